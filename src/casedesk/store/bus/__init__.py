"""The event bus: one interface, an in-process and a RabbitMQ implementation."""

"""Automation: event rules over case events, run through the normal activities."""

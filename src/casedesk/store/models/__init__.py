"""Every mapped table, imported here so that metadata and migrations see them all."""

from casedesk.store.base import Base
from casedesk.store.models.identity import ApiKey, Tenant, User

__all__ = ["ApiKey", "Base", "Tenant", "User"]

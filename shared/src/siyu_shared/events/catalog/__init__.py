"""Every event type of the system. Importing this package registers them all."""

from siyu_shared.events.catalog.commissions import CommissionAccrued, CommissionReversed, StatementClosed
from siyu_shared.events.catalog.common import SourceRef
from siyu_shared.events.catalog.contacts import ContactAdded, ContactRemoved, GroupJoined, GroupLeft
from siyu_shared.events.catalog.leads import LeadCaptured
from siyu_shared.events.catalog.orders import OrderClosed, OrderCompleted, OrderLine, OrderPaid, OrderRefunded
from siyu_shared.events.catalog.persons import PersonErased, PersonMerged
from siyu_shared.events.catalog.tags import TagChange, TagsChanged
from siyu_shared.events.catalog.touches import TouchFailed, TouchSent, TouchSkipped

__all__ = [
    "CommissionAccrued",
    "CommissionReversed",
    "ContactAdded",
    "ContactRemoved",
    "GroupJoined",
    "GroupLeft",
    "LeadCaptured",
    "OrderClosed",
    "OrderCompleted",
    "OrderLine",
    "OrderPaid",
    "OrderRefunded",
    "PersonErased",
    "PersonMerged",
    "SourceRef",
    "StatementClosed",
    "TagChange",
    "TagsChanged",
    "TouchFailed",
    "TouchSent",
    "TouchSkipped",
]

"""The rooms app's models, one module per feature, re-exported here by name.

Code imports them from `rooms.models`; each model stays in the `rooms` app label.
"""

from rooms.models.alerts import Alert as Alert
from rooms.models.alerts import AlertDelivery as AlertDelivery
from rooms.models.alerts import AlertKind as AlertKind
from rooms.models.alerts import AlertSubscription as AlertSubscription
from rooms.models.alerts import WebhookEndpoint as WebhookEndpoint
from rooms.models.audit import AuditEntry as AuditEntry
from rooms.models.audit import AuditEntryManager as AuditEntryManager
from rooms.models.conferences import Conference as Conference
from rooms.models.intents import RemoteIntent as RemoteIntent
from rooms.models.logs import LogState as LogState
from rooms.models.logs import VideoLog as VideoLog
from rooms.models.mirror import LAYOUT_CHOICES as LAYOUT_CHOICES
from rooms.models.mirror import QUALITY_CHOICES as QUALITY_CHOICES
from rooms.models.mirror import SIZE_CHOICES as SIZE_CHOICES
from rooms.models.mirror import UNPUSHED_STATES as UNPUSHED_STATES
from rooms.models.mirror import RemoteMirror as RemoteMirror
from rooms.models.mirror import RoomSettings as RoomSettings
from rooms.models.mirror import SyncState as SyncState
from rooms.models.mirror import colour_validator as colour_validator
from rooms.models.mirror import name_validator as name_validator
from rooms.models.mirror import validate_meta as validate_meta
from rooms.models.recordings import Recording as Recording
from rooms.models.recordings import RecordingState as RecordingState
from rooms.models.rooms import Room as Room
from rooms.models.runs import ActionRun as ActionRun
from rooms.models.runs import SyncRun as SyncRun
from rooms.models.sessions import RoomSession as RoomSession
from rooms.models.sessions import SessionMember as SessionMember
from rooms.models.spaces import Space as Space
from rooms.models.spaces import default_space_id as default_space_id
from rooms.models.spaces import environment_space as environment_space
from rooms.models.streams import Stream as Stream
from rooms.models.tokens import ConferenceToken as ConferenceToken
from rooms.models.tokens import IssuedRoomToken as IssuedRoomToken
from rooms.models.tokens import mask_secret as mask_secret
from rooms.models.usage import UsageDay as UsageDay
from rooms.models.usage import UsageDayTotal as UsageDayTotal
from rooms.models.usage import UsageMonth as UsageMonth

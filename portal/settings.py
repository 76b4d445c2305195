"""Settings of the room portal, read once from the environment or a .env file."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The checkout's .env (`make run` writes one the first time); the environment wins over it.
# PORTAL_ENV_FILE names another file, or none when empty (the test settings read none).
_env_file = env.str("PORTAL_ENV_FILE", default=str(BASE_DIR / ".env"))
if _env_file:
    environ.Env.read_env(_env_file, overwrite=False)

# --- Core -------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A development key only serves a DEBUG portal; production must set its own.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise environ.ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=true for a local portal)."
        )
    SECRET_KEY = "insecure-local-development-key-only-for-debug"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "auditlog",
    # Staff accounts: login lockout, TOTP second factor, Content-Security-Policy.
    "staff.account_apps.LoginLockoutsConfig",  # django-axes
    "django_otp",
    "staff.account_apps.TwoFactorConfig",  # django_otp.plugins.otp_totp
    # After the TOTP app: staff's admin replaces the one otp_totp registers.
    "staff",
    "csp",
    "rooms",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Staff with a second factor enter its code (and, when it is required, enrol one)
    # before any other admin page.
    "staff.second_factor.SecondFactorMiddleware",
    # Staff admin requests: audit actor, source "admin" and a request id (X-Request-Id).
    "rooms.middleware.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After every middleware with a process_view: a crafted admin query string is a 400.
    "rooms.admin.querystrings.AdminQueryStringMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share one SQLite file: wait for locks instead of failing.
    _sqlite_options = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite_options.setdefault("timeout", 20)
    # Take the write lock when a transaction begins: a deferred transaction that reads
    # and then writes fails at once with "database is locked" while another process
    # writes, whatever the timeout.
    _sqlite_options.setdefault("transaction_mode", "IMMEDIATE")
    # WAL lets readers (admin pages) go on while the worker writes, and makes commits cheap.
    _sqlite_options.setdefault(
        "init_command",
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (whitenoise serves them; a proxy may instead) -------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (production defaults; DEBUG relaxes only what local HTTP needs) -----------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^health/$"]

# --- Staff accounts: login lockout, second factor, idle sessions (the staff app) -------
# django-axes watches every login; its backend refuses a locked-out account or address.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins, counted per account and per client address, that lock either one out.
AXES_FAILURE_LIMIT = env.int("PORTAL_LOGIN_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A successful login does not wipe earlier failures (AXES_RESET_ON_SUCCESS stays off): it
# would let someone holding one account reset the count of the address they guess from.
# Minutes a lockout lasts after the last failure; a superuser can clear it sooner.
PORTAL_LOGIN_COOLOFF_MINUTES = env.int("PORTAL_LOGIN_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=PORTAL_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_CALLABLE = "staff.lockout.lockout_response"
# Proxies in front of the portal that append to X-Forwarded-For (0: use REMOTE_ADDR).
PORTAL_TRUSTED_PROXY_COUNT = env.int("PORTAL_TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "staff.lockout.client_ip"
# The portal registers its own, superuser-only admin for lockouts (staff.admin).
AXES_ENABLE_ADMIN = False
# A second factor (TOTP) for the admin: required unless DEBUG, or this setting, says not.
PORTAL_REQUIRE_OTP = env.bool("PORTAL_REQUIRE_OTP", default=not DEBUG)
OTP_TOTP_ISSUER = env("PORTAL_OTP_ISSUER", default="Room portal")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Staff sessions end after this many seconds without a request (a working day).
PORTAL_SESSION_IDLE_SECONDS = env.int("PORTAL_SESSION_IDLE_SECONDS", default=8 * 3600)
SESSION_COOKIE_AGE = PORTAL_SESSION_IDLE_SECONDS
SESSION_SAVE_EVERY_REQUEST = True

# --- Content-Security-Policy (django-csp), sent on every response -----------------------
# Everything comes from the portal itself: no inline script or style, no plugins, no
# framing, forms post only back to the portal.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
# Where browsers send violation reports (optional).
PORTAL_CSP_REPORT_URI = env("PORTAL_CSP_REPORT_URI", default="")
if PORTAL_CSP_REPORT_URI:
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [PORTAL_CSP_REPORT_URI]

# --- Redis and Celery -------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# Locks the portal keeps in Redis are named under this prefix.
REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", default="room-portal:")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1800)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1900)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- SignalWire -------------------------------------------------------------------------
# With no Space configured the portal talks to the local sandbox Space (`make run`).
SIGNALWIRE_SANDBOX_PORT = env.int("SIGNALWIRE_SANDBOX_PORT", default=8765)
# How many projects (each its own Space: credentials and data) `sandbox_space` serves;
# `make run` adds projects 2..N to the portal as Spaces.
SANDBOX_SPACES = env.int("SANDBOX_SPACES", default=1)
SIGNALWIRE_SPACE_URL = env("SIGNALWIRE_SPACE_URL", default="")
# The name the Space configured here takes in the portal ("Sandbox" or "Default" when unset).
# More Spaces are added in admin (Spaces); their API tokens are encrypted with these Fernet
# keys, newest first (unset: a key derived from SECRET_KEY).
SIGNALWIRE_SPACE_NAME = env("SIGNALWIRE_SPACE_NAME", default="")
SPACE_TOKEN_KEYS = env.list("SPACE_TOKEN_KEYS", default=[])
SIGNALWIRE_USES_SANDBOX = not SIGNALWIRE_SPACE_URL
if SIGNALWIRE_USES_SANDBOX:
    SIGNALWIRE_SPACE_URL = f"http://127.0.0.1:{SIGNALWIRE_SANDBOX_PORT}"
SIGNALWIRE_PROJECT_ID = env(
    "SIGNALWIRE_PROJECT_ID", default="sandbox-project" if SIGNALWIRE_USES_SANDBOX else ""
)
SIGNALWIRE_API_TOKEN = env(
    "SIGNALWIRE_API_TOKEN", default="sandbox-token" if SIGNALWIRE_USES_SANDBOX else ""
)
SIGNALWIRE_CONNECT_TIMEOUT = env.float("SIGNALWIRE_CONNECT_TIMEOUT", default=5.0)
SIGNALWIRE_READ_TIMEOUT = env.float("SIGNALWIRE_READ_TIMEOUT", default=30.0)
SIGNALWIRE_RETRIES = env.int("SIGNALWIRE_RETRIES", default=4)
SIGNALWIRE_RETRY_BACKOFF = env.float("SIGNALWIRE_RETRY_BACKOFF", default=0.5)
# Upper bound, in seconds, on the time one call may spend waiting between retries.
SIGNALWIRE_RETRY_MAX_WAIT = env.float("SIGNALWIRE_RETRY_MAX_WAIT", default=30.0)
# Wall-clock seconds one background call (tasks, commands) may take in all: connect,
# retries and reading the answer.
SIGNALWIRE_DEADLINE = env.float("SIGNALWIRE_DEADLINE", default=120.0)
# The interactive profile (a web request waiting on SignalWire): its deadline in all,
# its retries and its cap on the time spent backing off.
SIGNALWIRE_INTERACTIVE_DEADLINE = env.float("SIGNALWIRE_INTERACTIVE_DEADLINE", default=5.0)
SIGNALWIRE_INTERACTIVE_RETRIES = env.int("SIGNALWIRE_INTERACTIVE_RETRIES", default=1)
SIGNALWIRE_INTERACTIVE_RETRY_MAX_WAIT = env.float(
    "SIGNALWIRE_INTERACTIVE_RETRY_MAX_WAIT", default=1.0
)
# Largest answer body read from the Space, in bytes; a larger one fails the call unread.
SIGNALWIRE_MAX_RESPONSE_BYTES = env.int("SIGNALWIRE_MAX_RESPONSE_BYTES", default=8 * 1024 * 1024)
# Most rows one listing may have when its first page implies no smaller bound.
SIGNALWIRE_MAX_LIST_ROWS = env.int("SIGNALWIRE_MAX_LIST_ROWS", default=1_000_000)
# Most members one room session's listing is read for (a session holds a few hundred);
# a longer listing is an error of the run and the session keeps its mirrored members.
SIGNALWIRE_MAX_SESSION_MEMBERS = env.int("SIGNALWIRE_MAX_SESSION_MEMBERS", default=1000)
# Refuse (RemoteCallInTransactionError) to call SignalWire inside a database transaction;
# on with DEBUG (and in the tests), so a regression fails loudly where it is made.
SIGNALWIRE_REFUSE_IN_TRANSACTION = env.bool("SIGNALWIRE_REFUSE_IN_TRANSACTION", default=DEBUG)
SIGNALWIRE_SYNC_INTERVAL = env.int("SIGNALWIRE_SYNC_INTERVAL", default=300)
SIGNALWIRE_TOKEN_REFRESH_INTERVAL = env.int("SIGNALWIRE_TOKEN_REFRESH_INTERVAL", default=3600)
# Seconds between refreshes of the sessions in progress (their cost grows with live ones).
SIGNALWIRE_LIVE_SESSIONS_INTERVAL = env.int("SIGNALWIRE_LIVE_SESSIONS_INTERVAL", default=60)
SIGNALWIRE_SYNC_PAGE_SIZE = env.int("SIGNALWIRE_SYNC_PAGE_SIZE", default=1000)
SIGNALWIRE_SYNC_LOCK_TIMEOUT = env.int("SIGNALWIRE_SYNC_LOCK_TIMEOUT", default=120)
SIGNALWIRE_PUSH_MAX_ATTEMPTS = env.int("SIGNALWIRE_PUSH_MAX_ATTEMPTS", default=12)

# --- Audit ------------------------------------------------------------------------------
# Days to keep audit rows; 0 keeps them forever.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=0)
# Days a completed recording is kept before the daily retention deletes it (0: forever).
RECORDING_RETENTION_DAYS = env.int("RECORDING_RETENTION_DAYS", default=0)
# Days of room session history (sessions and members) kept; 0 keeps everything. Usage
# figures stay in the daily rollup after the sessions go.
SESSION_RETENTION_DAYS = env.int("SESSION_RETENTION_DAYS", default=0)

# --- Alerts, email and metrics ------------------------------------------------------------
# The name messages give the portal, and its address for full links in them (optional).
PORTAL_NAME = env("PORTAL_NAME", default="Room portal")
PORTAL_URL = env("PORTAL_URL", default="")
# Minutes a change may wait to reach SignalWire before it is an alert.
ALERT_PENDING_MINUTES = env.int("ALERT_PENDING_MINUTES", default=15)
# Seconds without a worker heartbeat (or a schedule by beat) before it is an alert (0: off).
ALERT_HEARTBEAT_STALE_SECONDS = env.int("ALERT_HEARTBEAT_STALE_SECONDS", default=300)
ALERT_HEARTBEAT_INTERVAL = env.int("ALERT_HEARTBEAT_INTERVAL", default=60)
ALERT_CHECK_INTERVAL = env.int("ALERT_CHECK_INTERVAL", default=60)
# The web process (/health/, the dashboard) looks at the heartbeats at most this often, so
# a dead worker still opens its alert (0: on every request).
ALERT_WEB_CHECK_SECONDS = env.int("ALERT_WEB_CHECK_SECONDS", default=60)
# Seconds after a failure before the check it asks for runs (a burst asks once).
ALERT_CHECK_DELAY = env.float("ALERT_CHECK_DELAY", default=15.0)
ALERT_REMINDER_HOURS = env.int("ALERT_REMINDER_HOURS", default=24)
ALERT_WEBHOOK_TIMEOUT = env.float("ALERT_WEBHOOK_TIMEOUT", default=10.0)
# The whole POST, answer included, within this many seconds: a receiver that answers slowly
# must not hold a worker.
ALERT_WEBHOOK_DEADLINE = env.float("ALERT_WEBHOOK_DEADLINE", default=15.0)
# Retries of one message, waiting ALERT_DELIVERY_BACKOFF seconds, doubled each time.
ALERT_DELIVERY_RETRIES = env.int("ALERT_DELIVERY_RETRIES", default=5)
ALERT_DELIVERY_BACKOFF = env.float("ALERT_DELIVERY_BACKOFF", default=30.0)
# /metrics answers only with this bearer token; empty turns it off (404).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Alert emails go through this SMTP server.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="room-portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

CELERY_BEAT_SCHEDULE = {
    "sync-conferences": {
        "task": "rooms.tasks.sync_conferences",
        "schedule": float(SIGNALWIRE_SYNC_INTERVAL),
    },
    "sync-rooms": {
        "task": "rooms.tasks.sync_rooms",
        "schedule": float(SIGNALWIRE_SYNC_INTERVAL),
    },
    "push-pending": {
        "task": "rooms.tasks.push_pending",
        "schedule": float(SIGNALWIRE_SYNC_INTERVAL),
    },
    "fetch-missing-tokens": {
        "task": "rooms.tasks.fetch_missing_tokens",
        "schedule": float(SIGNALWIRE_SYNC_INTERVAL),
    },
    "refresh-all-tokens": {
        "task": "rooms.tasks.refresh_all_tokens",
        "schedule": float(SIGNALWIRE_TOKEN_REFRESH_INTERVAL),
    },
    # Streams have no Space-wide listing (one request per conference and room), so they
    # are listed on the token refresh's slower cadence, and right after an owner is saved.
    "sync-streams": {
        "task": "rooms.tasks.sync_streams",
        "schedule": float(SIGNALWIRE_TOKEN_REFRESH_INTERVAL),
    },
    "refresh-live-sessions": {
        "task": "rooms.tasks.refresh_live_sessions",
        "schedule": float(SIGNALWIRE_LIVE_SESSIONS_INTERVAL),
    },
    "sync-session-history": {
        "task": "rooms.tasks.sync_session_history",
        "schedule": float(SIGNALWIRE_SYNC_INTERVAL),
    },
    "sync-recordings": {
        "task": "rooms.tasks.sync_recordings",
        "schedule": float(SIGNALWIRE_SYNC_INTERVAL),
    },
    # The frequent recordings sync stops at the first page already mirrored, so only a
    # full read of the listing sees recordings deleted in SignalWire, to mark them deleted remotely.
    "sync-recordings-full": {
        "task": "rooms.tasks.sync_recordings_full",
        "schedule": 86400.0,
    },
    "sync-logs": {
        "task": "rooms.tasks.sync_logs",
        "schedule": float(SIGNALWIRE_SYNC_INTERVAL),
    },
    # The frequent logs sync reads only logs made lately; the daily full one sees the rest
    # (logs discarded long after they were made, or gone from the listing).
    "sync-logs-full": {
        "task": "rooms.tasks.sync_logs",
        "schedule": 86400.0,
        "kwargs": {"full": True},
    },
    "recording-retention": {
        "task": "rooms.tasks.apply_recording_retention",
        "schedule": 86400.0,
    },
    "session-retention": {
        "task": "rooms.tasks.apply_session_retention",
        "schedule": 86400.0,
    },
    "audit-cleanup": {
        "task": "rooms.tasks.audit_cleanup",
        "schedule": 86400.0,
    },
    # Proof of life: beat sends it, a worker runs it; the web and the check read both times.
    "alert-heartbeat": {
        "task": "rooms.tasks.alert_heartbeat",
        "schedule": float(ALERT_HEARTBEAT_INTERVAL),
    },
    "check-alerts": {
        "task": "rooms.tasks.check_alerts",
        "schedule": float(ALERT_CHECK_INTERVAL),
    },
}

# --- Logging: one line per event, never a secret ----------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}},
}

# --- Audit trail (django-auditlog with the portal's own entry model) --------------------
AUDITLOG_LOGENTRY_MODEL = "rooms.AuditEntry"
# django-auditlog's migrations would create its own (swapped-out) entry table, which then
# holds a foreign key to users that blocks PostgreSQL's TRUNCATE; its only model is
# swapped for rooms.AuditEntry, so the app needs no tables of its own.
MIGRATION_MODULES = {"auditlog": None}
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_DISABLE_REMOTE_ADDR = False
AUDITLOG_MASK_CALLABLE = "rooms.audit.mask_value"

# --- Audit trail: request context and retention (owned by rooms.audit) ------------------
# Rows deleted per statement by the daily rooms.tasks.audit_cleanup task.
AUDIT_RETENTION_BATCH_SIZE = env.int("AUDIT_RETENTION_BATCH_SIZE", default=5000)
# auditlog's own middleware is not used: the portal makes its request ids itself, and
# auditlog reads the one in force (a request id or a sync/push run id) from this getter.
AUDITLOG_CID_HEADER = None
AUDITLOG_CID_GETTER = "rooms.audit.current_correlation_id"

# --- Pushes to SignalWire (admin edits, save hooks, push tasks) --------------------------
# A Redis lock per row serializes its pushes; it expires after this many seconds.
SIGNALWIRE_PUSH_LOCK_TIMEOUT = env.int("SIGNALWIRE_PUSH_LOCK_TIMEOUT", default=300)
# Seconds an admin edit waits for a push of the same row before saving as pending.
SIGNALWIRE_PUSH_LOCK_WAIT = env.float("SIGNALWIRE_PUSH_LOCK_WAIT", default=10.0)
# Seconds after which an edit whose answer was never stored is replayed by the next push.
SIGNALWIRE_INTENT_GRACE = env.int("SIGNALWIRE_INTENT_GRACE", default=300)
# Rows an admin action on many rows hands the worker per batch.
ROOMS_ACTION_BATCH_SIZE = env.int("ROOMS_ACTION_BATCH_SIZE", default=200)

# --- Background sync with SignalWire (rooms.sync, rooms.tasks.sync) -----------------------
# Queue a conference and room sync when a Celery worker starts, so a fresh portal shows
# its rooms at once.
SIGNALWIRE_SYNC_ON_START = env.bool("SIGNALWIRE_SYNC_ON_START", default=True)

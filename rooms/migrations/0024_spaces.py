# Several SignalWire Spaces: the Space model, and every mirrored row attached to one.

import django.core.validators
import django.db.models.deletion
import rooms.models.spaces
from django.conf import settings
from django.db import migrations, models


# Every row mirrored before this migration came from the one Space the environment
# configured: it becomes the first Space, and every row is attached to it.
MIRRORED = (
    'actionrun',
    'conference',
    'conferencetoken',
    'issuedroomtoken',
    'recording',
    'remoteintent',
    'room',
    'roomsession',
    'sessionmember',
    'stream',
    'syncrun',
    'usageday',
    'videolog',
    'usagedaytotal',
    'usagemonth',
)


def environment_space_name() -> str:
    if settings.SIGNALWIRE_SPACE_NAME:
        return settings.SIGNALWIRE_SPACE_NAME
    return "Sandbox" if settings.SIGNALWIRE_USES_SANDBOX else "Default"


def attach_rows_to_the_environment_space(apps, schema_editor):
    Space = apps.get_model("rooms", "Space")
    space, _ = Space.objects.get_or_create(
        from_settings=True, defaults={"name": environment_space_name()}
    )
    for name in MIRRORED:
        apps.get_model("rooms", name).objects.filter(space__isnull=True).update(space=space)
    # Staff keep what they saw: each is granted the first Space, so adding a second Space
    # later takes nothing away from them.
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    space.staff.add(*User.objects.filter(is_staff=True, is_superuser=False))
    AuditEntry = apps.get_model("rooms", "AuditEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    mirrored_types = ContentType.objects.filter(app_label="rooms", model__in=MIRRORED)
    AuditEntry.objects.filter(content_type__in=mirrored_types).update(space=space)


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('rooms', '0023_usage_totals'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Space',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('space_url', models.URLField(blank=True, help_text='https://example.signalwire.com (HTTPS; plain HTTP only on loopback).', verbose_name='Space URL')),
                ('project_id', models.CharField(blank=True, max_length=100, verbose_name='project ID')),
                ('token_env', models.CharField(blank=True, help_text='The name of an environment variable that holds the API token.', max_length=100, verbose_name='API token from environment variable')),
                ('token_encrypted', models.TextField(blank=True, editable=False)),
                ('from_settings', models.BooleanField(default=False, editable=False, verbose_name='configured by the environment')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.AddField(
            model_name='actionrun',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='conference',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='conferencetoken',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='issuedroomtoken',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='recording',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='remoteintent',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='room',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='roomsession',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='sessionmember',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='stream',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='syncrun',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='usageday',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='videolog',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='space',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='space',
            name='groups',
            field=models.ManyToManyField(blank=True, help_text='Groups whose staff may see and act in this Space.', related_name='signalwire_spaces', to='auth.group'),
        ),
        migrations.AddField(
            model_name='space',
            name='staff',
            field=models.ManyToManyField(blank=True, help_text='Staff who may see and act in this Space (superusers always may).', related_name='signalwire_spaces', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RemoveConstraint(
            model_name='usagedaytotal',
            name='rooms_usage_total_day',
        ),
        migrations.RemoveConstraint(
            model_name='usagemonth',
            name='rooms_usage_month_room',
        ),
        migrations.RemoveIndex(
            model_name='usageday',
            name='rooms_usage_room_day',
        ),
        migrations.AddField(
            model_name='usagedaytotal',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddField(
            model_name='usagemonth',
            name='space',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.RunPython(attach_rows_to_the_environment_space, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='actionrun',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='conference',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='conferencetoken',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='issuedroomtoken',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='recording',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='remoteintent',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='room',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='roomsession',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='sessionmember',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='stream',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='syncrun',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='usageday',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='videolog',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.RemoveConstraint(
            model_name='usageday',
            name='rooms_usage_day_room',
        ),
        migrations.AlterField(
            model_name='conference',
            name='name',
            field=models.CharField(help_text='Unique name in its SignalWire Space: letters, digits, _ and -. Fixed after creation.', max_length=100, validators=[django.core.validators.RegexValidator('^[A-Za-z0-9_-]+$', 'Use only letters, digits, underscores and hyphens (A-Z a-z 0-9 _ -).')]),
        ),
        migrations.AlterField(
            model_name='conference',
            name='remote_id',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, verbose_name='SignalWire ID'),
        ),
        migrations.AlterField(
            model_name='conferencetoken',
            name='remote_id',
            field=models.CharField(max_length=64, verbose_name='SignalWire ID'),
        ),
        migrations.AlterField(
            model_name='recording',
            name='remote_id',
            field=models.CharField(max_length=64, verbose_name='SignalWire ID'),
        ),
        migrations.AlterField(
            model_name='room',
            name='name',
            field=models.CharField(help_text='Unique name in its SignalWire Space: letters, digits, _ and -. Fixed after creation.', max_length=100, validators=[django.core.validators.RegexValidator('^[A-Za-z0-9_-]+$', 'Use only letters, digits, underscores and hyphens (A-Z a-z 0-9 _ -).')]),
        ),
        migrations.AlterField(
            model_name='room',
            name='remote_id',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, verbose_name='SignalWire ID'),
        ),
        migrations.AlterField(
            model_name='roomsession',
            name='remote_id',
            field=models.CharField(max_length=64, verbose_name='SignalWire ID'),
        ),
        migrations.AlterField(
            model_name='sessionmember',
            name='remote_id',
            field=models.CharField(max_length=64, verbose_name='SignalWire ID'),
        ),
        migrations.AlterField(
            model_name='stream',
            name='remote_id',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, verbose_name='SignalWire ID'),
        ),
        migrations.AlterField(
            model_name='videolog',
            name='remote_id',
            field=models.CharField(max_length=64, verbose_name='SignalWire ID'),
        ),
        migrations.AddField(
            model_name='alert',
            name='space',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rooms.space'),
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(fields=['space', '-timestamp'], name='rooms_audit_space_time_idx'),
        ),
        migrations.AddIndex(
            model_name='recording',
            index=models.Index(fields=['space', 'started_at'], name='rooms_rec_space_started'),
        ),
        migrations.AddIndex(
            model_name='roomsession',
            index=models.Index(fields=['space', 'start_time'], name='rooms_session_space_start'),
        ),
        migrations.AddConstraint(
            model_name='conference',
            constraint=models.UniqueConstraint(fields=('name', 'space'), name='rooms_conference_space_name'),
        ),
        migrations.AddConstraint(
            model_name='conference',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_conference_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='conferencetoken',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_conftoken_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='recording',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_recording_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='room',
            constraint=models.UniqueConstraint(fields=('name', 'space'), name='rooms_room_space_name'),
        ),
        migrations.AddConstraint(
            model_name='room',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_room_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='roomsession',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_session_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='sessionmember',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_member_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='stream',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_stream_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='usageday',
            constraint=models.UniqueConstraint(fields=('day', 'room_name', 'space'), name='rooms_usage_space_day_room'),
        ),
        migrations.AddConstraint(
            model_name='videolog',
            constraint=models.UniqueConstraint(fields=('remote_id', 'space'), name='rooms_log_space_remote_id'),
        ),
        migrations.AddConstraint(
            model_name='space',
            constraint=models.UniqueConstraint(condition=models.Q(('from_settings', True)), fields=('from_settings',), name='rooms_space_one_from_settings'),
        ),
        migrations.RemoveIndex(
            model_name='conference',
            name='rooms_confe_sync_st_2337b3_idx',
        ),
        migrations.RemoveIndex(
            model_name='room',
            name='rooms_room_sync_st_e67896_idx',
        ),
        migrations.RemoveIndex(
            model_name='stream',
            name='rooms_strea_sync_st_9292a5_idx',
        ),
        migrations.AddIndex(
            model_name='conference',
            index=models.Index(fields=['space', 'sync_state', 'remote_id'], name='rooms_confe_space_i_5c05b1_idx'),
        ),
        migrations.AddIndex(
            model_name='room',
            index=models.Index(fields=['space', 'sync_state', 'remote_id'], name='rooms_room_space_i_85d7b5_idx'),
        ),
        migrations.AddIndex(
            model_name='stream',
            index=models.Index(fields=['space', 'sync_state', 'remote_id'], name='rooms_strea_space_i_3f12ad_idx'),
        ),
            migrations.AlterField(
            model_name='usagedaytotal',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AlterField(
            model_name='usagemonth',
            name='space',
            field=models.ForeignKey(default=rooms.models.spaces.default_space_id, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rooms.space'),
        ),
        migrations.AddConstraint(
            model_name='usagedaytotal',
            constraint=models.UniqueConstraint(fields=('day', 'space'), name='rooms_usage_total_day'),
        ),
        migrations.AddConstraint(
            model_name='usagemonth',
            constraint=models.UniqueConstraint(fields=('month', 'room_name', 'space'), name='rooms_usage_month_room'),
        ),
        migrations.AddIndex(
            model_name='usageday',
            index=models.Index(fields=['space', 'room_name', 'day'], name='rooms_usage_room_day'),
        ),
    ]

# Indexes for the activity lists (sessions and recordings) at a year of a busy Space.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rooms', '0019_alerts'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='recording',
            index=models.Index(fields=['sync_state', 'started_at'], name='rooms_rec_state_started'),
        ),
        migrations.AddIndex(
            model_name='roomsession',
            index=models.Index(fields=['status', 'start_time'], name='rooms_session_status_start'),
        ),
        migrations.AddIndex(
            model_name='roomsession',
            index=models.Index(fields=['conference', 'start_time'], name='rooms_session_conf_start'),
        ),
        migrations.AddIndex(
            model_name='roomsession',
            index=models.Index(fields=['room', 'start_time'], name='rooms_session_room_start'),
        ),
    ]

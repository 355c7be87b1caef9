from django.db import migrations, models


class Migration(migrations.Migration):
    """Each user may turn off tools the assistant can call (function calling): the names they turned off."""

    dependencies = [
        ("conversations", "0011_conversation_ended_by_interrupted"),
    ]

    operations = [
        migrations.AddField(
            model_name="voicepreferences",
            name="tools_disabled",
            field=models.JSONField(blank=True, default=list),
        ),
    ]

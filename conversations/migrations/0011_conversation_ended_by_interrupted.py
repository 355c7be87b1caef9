from django.db import migrations, models


class Migration(migrations.Migration):
    """ended_by may say "interrupted": the sweep closes conversations whose worker died (conversations/sweep.py)."""

    dependencies = [
        ("conversations", "0010_conversation_ended_by"),
    ]

    operations = [
        migrations.AlterField(
            model_name="conversation",
            name="ended_by",
            field=models.CharField(
                blank=True,
                choices=[("user", "User"), ("staff", "Staff"), ("system", "System"), ("interrupted", "Interrupted")],
                max_length=16,
            ),
        ),
    ]

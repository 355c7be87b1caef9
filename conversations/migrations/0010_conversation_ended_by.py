from django.db import migrations, models


class Migration(migrations.Migration):

    # 0008 (prices) is being written alongside; whoever merges second makes this depend on it.
    dependencies = [
        ("conversations", "0009_usage_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="ended_by",
            field=models.CharField(
                blank=True,
                choices=[("user", "User"), ("staff", "Staff"), ("system", "System")],
                max_length=8,
            ),
        ),
    ]

"""Full-text search indexes for the history page, on PostgreSQL only (SQLite searches with icontains)."""
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

# The same expressions conversations/selectors.py searches with (the "simple" configuration: no
# stemming, as transcripts come in any language), so PostgreSQL can use these indexes. They are not in
# the models' Meta: SQLite rebuilds a table with every Meta index and cannot build these.
INDEXES = [
    ("turn", GinIndex(SearchVector("text", config="simple"), name="turn_text_search")),
    ("conversation", GinIndex(SearchVector("title", config="simple"), name="conversation_title_search")),
]


def add_indexes(apps, schema_editor):
    """Create the GIN indexes when the database is PostgreSQL."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in INDEXES:
        schema_editor.add_index(apps.get_model("conversations", model_name), index)


def remove_indexes(apps, schema_editor):
    """Drop the GIN indexes when the database is PostgreSQL."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in INDEXES:
        schema_editor.remove_index(apps.get_model("conversations", model_name), index)


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0004_turn_generated_ms"),
    ]

    operations = [
        migrations.RunPython(add_indexes, remove_indexes, elidable=False),
    ]

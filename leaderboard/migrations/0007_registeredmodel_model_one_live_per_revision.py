# A migration of its own, after 0006's data changes: PostgreSQL cannot alter a table that has pending
# (deferred foreign-key) trigger events in the same transaction.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("leaderboard", "0006_merge_duplicate_models"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="registeredmodel",
            constraint=models.UniqueConstraint(
                condition=models.Q(("deleted", False)),
                fields=("storage_path", "revision", "precision", "weight_type", "base_model_path"),
                name="model_one_live_per_revision",
            ),
        ),
    ]

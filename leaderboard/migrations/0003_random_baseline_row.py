from django.db import migrations

# Chance level of each Open LLM Leaderboard v1 column, as that leaderboard's baseline row showed it
# (four-way multiple choice 25%, Winogrande's two options 50%, GSM8K free-form answers 0%).
OPENLLM_V1_RANDOM = {"arc": 0.25, "hellaswag": 0.25, "mmlu": 0.25, "truthfulqa": 0.25, "winogrande": 0.5, "gsm8k": 0.0}


def add_baseline(apps, schema_editor):
    ReferenceRow = apps.get_model("leaderboard", "ReferenceRow")
    ReferenceRow.objects.get_or_create(
        suite="openllm_v1", kind="baseline", label="Random baseline",
        defaults={"values": OPENLLM_V1_RANDOM, "note": "Chance level of each benchmark", "position": 0},
    )


def remove_baseline(apps, schema_editor):
    apps.get_model("leaderboard", "ReferenceRow").objects.filter(suite="openllm_v1", kind="baseline", label="Random baseline").delete()


class Migration(migrations.Migration):
    dependencies = [("leaderboard", "0002_leaderboard_preferences_reference_rows")]
    operations = [migrations.RunPython(add_baseline, remove_baseline)]

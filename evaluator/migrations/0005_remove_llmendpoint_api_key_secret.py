from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('evaluator', '0004_endpoint_secrets_data'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='llmendpoint',
            name='api_key_secret',
        ),
    ]

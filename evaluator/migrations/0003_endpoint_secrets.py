from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('evaluator', '0002_owned_fields_verbose_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='llmendpoint',
            name='api_key_encrypted',
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name='llmendpoint',
            name='api_key_needed',
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AddField(
            model_name='llmendpoint',
            name='secret_kind',
            field=models.CharField(blank=True, choices=[('', 'None (the endpoint needs no key)'), ('stored', 'Typed here, stored encrypted'), ('file', 'A named secret file placed by an administrator'), ('env', 'A named environment variable placed by an administrator')], default='', max_length=10, verbose_name='API key'),
        ),
        migrations.AddField(
            model_name='llmendpoint',
            name='secret_name',
            field=models.CharField(blank=True, max_length=100, verbose_name='secret name'),
        ),
    ]

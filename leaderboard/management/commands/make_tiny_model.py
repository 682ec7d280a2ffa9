from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from leaderboard.tiny_model import build_tiny_model


class Command(BaseCommand):
    help = "Write a tiny random-initialised Llama-style model with a locally trained tokenizer (no network)."

    def add_arguments(self, parser):
        parser.add_argument("output_dir", nargs="?", help="Folder to write; default <first model root>/tiny-llama")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--hidden-size", type=int, default=64)
        parser.add_argument("--layers", type=int, default=2)

    def handle(self, *args, output_dir=None, seed=0, hidden_size=64, layers=2, **options):
        target = Path(output_dir) if output_dir else settings.MODEL_ROOTS[0] / "tiny-llama"
        build_tiny_model(target, seed=seed, hidden_size=hidden_size, num_layers=layers)
        self.stdout.write(self.style.SUCCESS(f"Tiny model written to {target}"))

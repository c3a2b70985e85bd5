"""``python -m bot`` runs the ``helpline`` console script."""

from bot.cli import main

main()

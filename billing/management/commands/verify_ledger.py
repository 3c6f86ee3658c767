"""`manage.py verify_ledger`: check the posted billing data (billing/ledger.py); exits 1 and lists
every inconsistency found, 0 when there is none."""

from django.core.management.base import BaseCommand, CommandError

from billing.ledger import verify
from billing.models import Invoice


class Command(BaseCommand):
    help = ("Recompute posted invoice totals, check invoice number sequences and the states of billed items; "
            "exit 1 on any inconsistency.")

    def handle(self, *args, **options):
        problems = verify()
        for problem in problems:
            self.stderr.write(str(problem))
        posted = Invoice.objects.filter(status=Invoice.Status.POSTED).count()
        if problems:
            raise CommandError(f"Ledger check failed: {len(problems)} problem(s) in {posted} posted invoice(s).")
        self.stdout.write(f"Ledger OK: {posted} posted invoice(s), numbers gapless, totals and item states agree.")

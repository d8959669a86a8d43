"""fiscal: Brazilian electronic invoices (NF-e/NFC-e 4.00) validated, summarized and
booked as lancamentos."""

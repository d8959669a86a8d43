"""consolidado: each merchant's consolidated daily balance, built from the
entries lancamentos delivers."""

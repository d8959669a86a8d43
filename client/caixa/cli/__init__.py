"""The `caixa` command line for people; scripts can use its `--json` output."""

"""What a competent engineer would build in an hour instead of Caixa: the same
two REST routes on FastAPI, uvicorn and asyncpg. The bench measures Caixa
against it (bench.side_by_side); it is no part of Caixa."""

"""Pipeline stages: each module declares `Params` (pydantic, extra keys forbidden) and `run(params, inputs, out)`."""

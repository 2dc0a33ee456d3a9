class PipelineError(ValueError):
    """A problem with the pipeline definition, its params or its artefacts, found before or between stages."""

"""An OpenAI-compatible teacher for the bundled sample that needs no API key and no network.

``python -m sample_data.offline_teacher --port N`` serves it in the foreground; ``distill demo`` starts it in the
background (``process.start``) and registers it as the workspace teacher ``offline``. It answers triage prompts like
the sample's logged teacher (``answers``), writes new tickets from the sample generator's templates and grades student
answers (``tickets``), over real HTTP (``server``). Nothing in the product knows it: it is a teacher with a base URL.
"""

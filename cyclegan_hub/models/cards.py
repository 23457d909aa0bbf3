"""The blocks a model card is made of, shared by every family's template (each family writes only what is its
own: its heading, what it is, how to use it). Jinja text, filled by ``PyTorchModelHubMixin``'s card rendering."""

FRONT_MATTER = """---
{{ card_data }}
---
"""

SAMPLE = """{% if sample_image %}![input | translated | reconstructed]({{ sample_image }})
{% endif %}
"""

INSTALL = """## Usage

```bash
{{ install }}
```
"""

#: The model table's head and the rows every family lists (``model_rows``); a family adds its own last rows.
MODEL_TABLE = """## Model

| | |
|---|---|
{% for label, value in model_rows %}| {{ label }} | {{ value }} |
{% endfor %}"""

#: Origin (converted weights), Training (a run), Evaluation and Citation: the card's last sections.
SECTIONS = """{% if origin %}
## Origin

{{ origin }}
{% endif %}{% if training %}
## Training

{{ training }}
{% endif %}{% if metrics_table %}
## Evaluation

{{ metrics_table }}
{% endif %}
## Citation

```bibtex
{{ citation }}
```

Code: {{ repo_url }}
"""

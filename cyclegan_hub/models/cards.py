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


#: What a one-way family's card says after its introduction: the sample, how to use it (through ``HubModule``, which
#: loads the class config.json names), the model table and the last sections.
ONE_WAY_BODY = (
    SAMPLE
    + INSTALL
    + """
```python
from cyclegan_hub.models.modeling import HubModule

generator = HubModule.from_pretrained("{{ repo_id | default('path/to/this/folder', true) }}")
generator.translate("input.png").save("translated.png")  # PIL in, PIL out, same size
```

or `cyclegan-hub translate --model {{ repo_id | default('path/to/this/folder', true) }} input.png --output out.png`.
The model was trained at {{ config.image_size }}x{{ config.image_size }}; other sizes are padded to a multiple of
{{ size_multiple }} and cropped back.

"""
    + MODEL_TABLE
    + """| parameters | {{ "{:,}".format(num_parameters) }} |
"""
    + SECTIONS
)

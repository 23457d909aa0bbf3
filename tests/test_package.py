import subprocess
import sys


def test_import_pulls_no_training_or_ui_library():
    code = (
        "import sys, cyclegan_hub, cyclegan_hub.cli, cyclegan_hub.hub, cyclegan_hub.imaging;"
        "heavy = {'datasets', 'accelerate', 'diffusers', 'gradio', 'tensorboard', 'gradio_client'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"

"""The Hub side of the library: loading generators by repo id or folder with errors a user can act on."""

from __future__ import annotations

from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .generator import CycleGenerator


def load_generator(model: str, *, revision: str | None = None, device: str = "cpu", **kwargs) -> CycleGenerator:
    """``CycleGenerator.from_pretrained`` with every failure turned into a one-line ValueError naming the model.

    ``model`` is a local ``save_pretrained`` folder or a Hub repo id ("user/mnist-6to9")."""
    try:
        return CycleGenerator.from_pretrained(model, revision=revision, map_location=device, **kwargs)
    except HFValidationError:
        raise ValueError(f"{model!r}: no such model folder, and not a Hub repo id like 'user/name'") from None
    except GatedRepoError:
        raise ValueError(f"{model} is gated: accept its terms on the Hub and log in (HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise ValueError(f"{model}: no such model repo on the Hub (or it is private and no token allows it)") from None
    except RevisionNotFoundError:
        raise ValueError(f"{model}: no revision {revision!r}") from None
    except LocalEntryNotFoundError:
        raise ValueError(f"{model} is not in the local cache and the Hub cannot be reached (offline?)") from None
    except EntryNotFoundError:
        raise ValueError(f"{model} is not a cyclegan-hub model: it has no model.safetensors") from None
    except HfHubHTTPError as err:
        raise ValueError(f"could not download {model}: {str(err).splitlines()[0]}") from None
    except (FileNotFoundError, ValueError) as err:  # ours: a folder without weights, a config/weights mismatch
        raise ValueError(str(err)) from None

"""World-model checkpoints: one file that loads without the author's code and runs no pickled object.

``export(model, "model.wmb")`` writes a zip of

================  =================================================================================
``wmbench.json``  format version, the :class:`~wmbench.world_model.ModelMeta`, the rollout horizon,
                  the wmbench and torch versions, and the sha256 of every other member
``encode.pt2``    ``model.encode(pixels)`` as a ``torch.export`` program, free in the batch (and in
                  the number of frames when the encoder allows it)
``rollout.pt2``   ``model.rollout(latents, actions)`` at the maximum horizon ``H`` (a Python loop
                  over steps is unrolled when traced); free in the batch
``cost.pt2``      ``model.cost(predicted, goal)``, only when the model defines one
================  =================================================================================

``load_model(path)`` turns it back into a :class:`LoadedModel`. A plan of ``K < H`` steps is
padded with zero action blocks up to ``H`` and the first ``K`` predictions are returned: valid
because predictions are causal (prediction ``k`` depends on the action blocks up to ``T + k``
only), which ``export`` checks on the model before it writes the file. An encoder exported for a
fixed number of frames still takes any number: they are encoded in chunks of that many.

Loading is safe on an untrusted file, and a loaded file cannot act. ``torch.export.load`` alone
is not safe: it unpickles members with ``weights_only=False`` when the safe loader fails, resolves
graph operators by attribute lookup on ``torch`` (``torch.os.system`` resolves), ``eval``s shape
expressions through sympy and compiles the stored shape guards into Python. And a program torch
loads may call any ATen operator, such as ``aten.from_file`` mapping a file that a ``copy_`` then
writes. So before torch reads anything:

- the zip is read within size bounds: declared sizes, a total budget and the compression ratio are
  checked on its directory before a byte is decompressed, and members must unpack to their
  declared size (``bounded_zip``);
- the manifest must stay within sane limits (frame size, history, action block, latent size,
  horizon) and describe its programs: their input and output shapes must be the ones it implies;
- every program passes ``program_check``: only the members a plain exported program has, pickles
  loadable with ``weights_only=True``, shape expressions and guards from a small token grammar,
  every other string a plain name, and every call a pure tensor operator from the allowlist in
  ``operators`` (no file, process, environment, random or in-place operator), with no update of
  its weights or inputs in its signature.

Models that need their own code load only with ``trust_code=True`` (``--trust-code``): a research
spec ``model.json`` ``{"factory": "package.module:function", "config": {...}, "weights":
"model.safetensors"}`` (``save_spec`` writes one from a class, its config and a state_dict) or a
``torch.save`` pickle of the whole module.

=====================  ==========================================================================
``wmb``                the format: ``export`` and its check of the written file against the model,
                       reading an exported file, and ``load_model``, which tells an export, a
                       research spec and a pickle apart
``loaded``             ``LoadedModel``, what the harness plans with whichever route loaded it
``program_check``      the check of an untrusted program before torch reads it
``operators``          the operators a program may call: pure functions of their tensor inputs
``bounded_zip``        reading an untrusted zip within size bounds
``research_code``      research specs (``save_spec``) and pickles, loaded behind ``trust_code``; a
                       module evaluated in memory; the protocol check every model passes
``state_dict``         weights files (safetensors or a ``torch.save``d state_dict) read without
                       running code, and strict loading that lists every key difference
``errors``             ``CheckpointError`` and the wording its messages share
=====================  ==========================================================================
"""

from wmbench.checkpoint.errors import CheckpointError
from wmbench.checkpoint.loaded import LoadedModel
from wmbench.checkpoint.research_code import save_spec
from wmbench.checkpoint.wmb import MANIFEST, SUFFIX, export, load_model

__all__ = ["CheckpointError", "LoadedModel", "MANIFEST", "SUFFIX", "export", "load_model", "save_spec"]

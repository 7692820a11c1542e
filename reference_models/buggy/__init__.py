"""Deliberately broken models: one seeded bug per module.

Each module's docstring starts with ``Invariant: <name>``, the dyncheck invariant that
must catch its bug, then describes the bug and what a correct version does. Each holds
one model class, built like the gated ``DynamicNet``
(``(input_size, hidden_size, output_size)``, first layer an ``nn.Linear`` on ``x``), or in
the style of the library whose pattern it breaks (``forward(input_ids, attention_mask)``),
so that dyncheck's zero-configuration inference can check it.

* :mod:`~reference_models.buggy.unseeded_generator` -- noise from a private generator
  seeded from the OS, not from the global seed (determinism, dtype_agreement,
  batch_invariance).
* :mod:`~reference_models.buggy.call_counter` -- a call counter on ``self`` that changes
  the output (determinism, state_roundtrip, batch_invariance).
* :mod:`~reference_models.buggy.nan_output` -- a norm division without epsilon: NaN
  outputs for a zero row (finite).
* :mod:`~reference_models.buggy.nan_gradient` -- ``where(h > 0, sqrt(h), 0)``: finite
  outputs, NaN gradients (finite).
* :mod:`~reference_models.buggy.nan_gradient_behind_norms` -- the same ``sqrt`` behind 24
  train-mode BatchNorms, whose overflow on constant inputs is innocent: the NaN stays with
  their eps raised to 1 (finite, grad_isolation).
* :mod:`~reference_models.buggy.nan_behind_flat_channel` -- the same ``sqrt`` behind
  ``DepthwiseNormNet``'s BatchNorms, NaN whatever the norms' backward (finite,
  grad_isolation).
* :mod:`~reference_models.buggy.shared_original` -- the founding ``SharedNet`` with
  weights of different shapes tied together; it fails in forward (runs).
* :mod:`~reference_models.buggy.masked_gate` -- fc2 masked by the gate instead of
  skipped (grad_isolation).
* :mod:`~reference_models.buggy.threshold_off_by_one` -- ``>=`` where the declared
  branch says ``>`` (grad_isolation).
* :mod:`~reference_models.buggy.detached_input` -- the branch detaches its input and cuts
  fc1 off (grad_isolation).
* :mod:`~reference_models.buggy.item_temperature` -- CLIP's learnable temperature, a
  parameter of the model itself, read through ``.item()`` (grad_isolation).
* :mod:`~reference_models.buggy.plain_random_features` -- a random projection drawn when
  building, kept as a plain attribute: another build loaded from the state_dict differs
  (state_roundtrip).
* :mod:`~reference_models.buggy.batch_scaled_boxes` -- a detection head's per-image boxes
  scaled by the batch's largest (batch_invariance).
* :mod:`~reference_models.buggy.plain_list_layers` -- blocks kept in a plain list, not an
  nn.ModuleList: outside the state_dict and out of .to()'s reach (state_roundtrip,
  dtype_agreement).
* :mod:`~reference_models.buggy.required_mask_mean` -- a transformer classifier whose
  required key padding mask the pooling ignores (padding_invariance).
* :mod:`~reference_models.buggy.set_mean_over_padding` -- DeepSets whose pooling divides
  by the padded set size (padding_invariance).
* :mod:`~reference_models.buggy.held_path` -- a supernet holding its sampled path for two
  calls in plain attributes (state_roundtrip).
* :mod:`~reference_models.buggy.batch_routed_condconv` -- CondConv routing from features
  pooled over the batch too (batch_invariance).
* :mod:`~reference_models.buggy.packed_last_step` -- a classifier over a PackedSequence that
  reads the last padded step of its GRU's output, not the last valid one (batch_invariance).
* :mod:`~reference_models.buggy.centred_conv` -- a TCN whose ``Chomp1d`` cuts the wrong
  end: each convolution reads later steps (causality).
* :mod:`~reference_models.buggy.future_mask` -- causal attention masked with ``triu(2)``:
  each step attends to the next one too (causality).
* :mod:`~reference_models.buggy.length_scaled_positions` -- causal attention with positions
  scaled by the sequence's length: earlier outputs change as the sequence grows (causality).
* :mod:`~reference_models.buggy.any_ended_decoder` -- greedy decoding that stops the whole
  batch at the first sample's end token (batch_invariance).
* :mod:`~reference_models.buggy.unheld_cell_state` -- a GRU cell unrolled by hand that keeps
  stepping over each sequence's padding (padding_invariance).
* :mod:`~reference_models.buggy.normalised_over_batch` -- a contrastive model's embeddings
  L2-normalised over the batch instead of their features (batch_invariance).
* :mod:`~reference_models.buggy.centred_crops` -- the multi-crop wrapper centring its outputs
  on the mean over every sample's crops in the batch (batch_invariance).
* :mod:`~reference_models.buggy.all_task_heads` -- every task's head run and one result picked
  by the task id (grad_isolation).
* :mod:`~reference_models.buggy.unreset_cache` -- an incremental-decoding position count kept on
  the module in eval mode and never reset (determinism, batch_invariance).
* :mod:`~reference_models.buggy.windowed_padding_nan` -- windowed attention on torch's
  encoder layer, NaN on torch's inference path for a window of padding only (finite).
* :mod:`~reference_models.buggy.inplace_branch` -- an in-place op that breaks backward
  only on the taken branch (grad_isolation, finite, tied_weights, dtype_agreement).
* :mod:`~reference_models.buggy.unmasked_conv_padding` -- ``LengthMaskedConformer``'s
  depthwise convolution reading the padded frames, as torchaudio's Conformer does
  (padding_invariance).
* :mod:`~reference_models.buggy.relative_conv_leak` -- ``RelativeLengthsEncoder``'s
  depthwise convolution reading the padded frames under relative lengths, as SpeechBrain's
  Conformer does (padding_invariance).
* :mod:`~reference_models.buggy.normalised_over_padding` -- ``ZeroPaddedAudioEncoder``
  normalising each waveform over its padding, which no declared padding value makes
  right (padding_invariance).
* :mod:`~reference_models.buggy.group_norm_frames` -- ``RawAudioEncoder`` normalising its
  first convolution's channels over every frame, padding included, as the ``"group_norm"``
  wav2vec2 extractors do (padding_invariance).
* :mod:`~reference_models.buggy.batch_mean_features` -- ``CaptionDecoder`` centring the
  image features on the batch's mean (batch_invariance, padding_invariance).
* :mod:`~reference_models.buggy.shared_hidden` -- ``HiddenStateLM`` starting every
  sequence from the batch's mean hidden state (batch_invariance).
* :mod:`~reference_models.buggy.averaged_cell_state` -- ``WordLanguageModel`` starting
  every sequence from the batch's mean LSTM cell state (batch_invariance).
* :mod:`~reference_models.buggy.time_mean_on_batch_axis` -- ``WordTransformerLM`` centring
  its embeddings over ``dim=1``, the batch in its time-major layout (batch_invariance,
  causality).
* :mod:`~reference_models.buggy.one_hot_twice` -- the router's one-hot choice one-hot
  encoded again, as transformers' NLLB-MoE does: experts 2 and 3 never run (coverage).
* :mod:`~reference_models.buggy.argmax_router` -- experts chosen by argmax with no gate:
  the router gets no gradient (grad_isolation).
* :mod:`~reference_models.buggy.dense_moe` -- every expert run, then masked
  (grad_isolation).
* :mod:`~reference_models.buggy.checkpointed_mask` -- a block under a reentrant checkpoint,
  run, then masked by a closed gate (grad_isolation).
* :mod:`~reference_models.buggy.top1_softmax_router` -- the softmax taken after top-1,
  over one value: the gate is always 1 and the router never learns (grad_isolation).
* :mod:`~reference_models.buggy.zero_grad_trick` -- ``0 * fc2.weight.sum()`` gives a
  skipped branch zero gradients that optimizers act on (grad_isolation).
* :mod:`~reference_models.buggy.cloned_tie` -- a tie made by cloning (tied_weights).
* :mod:`~reference_models.buggy.reinit_tie` -- a re-initialisation replaces one tied
  Parameter (tied_weights).
* :mod:`~reference_models.buggy.lazy_tie` -- the tie made in forward (tied_weights,
  state_roundtrip).
* :mod:`~reference_models.buggy.transposed_tie` -- an embedding's transposed copy as the output projection's "tie"
  (tied_weights).
* :mod:`~reference_models.buggy.data_alias_tie` -- ``.data`` aliasing: one storage, two
  Parameters (tied_weights).
* :mod:`~reference_models.buggy.closure_tie` -- the decoder reaches the embedding through
  a closure, so a deepcopy trains the original (tied_weights).
* :mod:`~reference_models.buggy.closure_tie_factory` -- the same through a closure over
  ``self``, with a factory as the target (tied_weights).
* :mod:`~reference_models.buggy.grown_layer` -- the output layer created in forward on the
  first call (state_roundtrip, determinism, tied_weights).
* :mod:`~reference_models.buggy.actnorm_flag` -- ActNorm's "initialised" flag kept as a
  plain attribute, outside the state_dict (state_roundtrip).
* :mod:`~reference_models.buggy.inplace_jitter` -- input jitter written in place,
  ``x.mul_(noise)`` (purity).
* :mod:`~reference_models.buggy.eval_running_stats` -- running statistics updated in eval
  mode too (determinism, purity, batch_invariance).
* :mod:`~reference_models.buggy.batch_mean_branch` -- a branch on a batch statistic
  (batch_invariance).
* :mod:`~reference_models.buggy.batch_scaled` -- activations scaled by the batch's mean
  magnitude, checked with plain Hypothesis strategies that name no batch axis
  (batch_invariance).
* :mod:`~reference_models.buggy.per_sample_coin` -- ``torch.rand(batch_size)`` gives each
  position its own draw (batch_invariance).
* :mod:`~reference_models.buggy.capacity_routing` -- routing with a per-expert capacity
  drops samples (batch_invariance).
* :mod:`~reference_models.buggy.naive_log_softmax` -- log-softmax without the max shift
  overflows in float32 (dtype_agreement, finite, grad_isolation).
* :mod:`~reference_models.buggy.naive_variance` -- a variance as ``E[h²] - E[h]²`` on
  activations near 1000: float32 cancels every digit of it (dtype_agreement).
* :mod:`~reference_models.buggy.pinned_naive_variance` -- the same variance inside a step
  pinned to float32 (``h.float()``): a float64 copy rounding at that cast would cancel
  alike; the reference keeps float64 there (dtype_agreement).
* :mod:`~reference_models.buggy.perturbed_device` -- not a model: three perturbed CPU
  "devices" for device_agreement.
* :mod:`~reference_models.buggy.last_padded_step` -- ``output[:, -1]``, the last padded
  step, taken for each sequence's last valid step (padding_invariance, batch_invariance).
* :mod:`~reference_models.buggy.never_unsorted` -- sorted by length for packing and never
  put back in the batch's order (padding_invariance, batch_invariance).
* :mod:`~reference_models.buggy.unpacked_rnn` -- no packing: the GRU runs over the padding
  and ``h_n`` is taken after the last padded step (padding_invariance).
* :mod:`~reference_models.buggy.mean_over_padding` -- mean pooling over the padded steps
  (padding_invariance).
* :mod:`~reference_models.buggy.dict_padded_sum` -- a dict batch (``batch["tokens"]``,
  ``batch["lengths"]``) averaged as a sum over every step, padding included, divided by the
  length (padding_invariance).
* :mod:`~reference_models.buggy.dict_frames_padded_sum` -- the same sum over float frames,
  whose count is ``batch["n_valid"]``, declared with ``lengths="batch['n_valid']"``
  (padding_invariance).
* :mod:`~reference_models.buggy.nested_mask_mean` -- a multimodal batch's text, a dict
  inside the dict, averaged over the padded length (padding_invariance).
* :mod:`~reference_models.buggy.batch_scaled_logits` -- a two-tower model's pairwise logits
  divided by the batch size (batch_invariance).
* :mod:`~reference_models.buggy.padded_list` -- a list of sequences padded with
  ``pad_sequence`` and run through an LSTM unpacked (batch_invariance).
* :mod:`~reference_models.buggy.stacked_batch_mean` -- a list of sequences of one length,
  stacked and centred on the batch's mean (batch_invariance).
* :mod:`~reference_models.buggy.unsaved_running_stats` -- a hand-written batch norm's
  running statistics registered with ``persistent=False`` (state_roundtrip, in eval mode).
* :mod:`~reference_models.buggy.eval_codebook_update` -- a VQ-VAE's EMA codebook updated
  in eval mode too (purity, determinism, batch_invariance).
* :mod:`~reference_models.buggy.carried_membrane` -- spiking neurons that start each call
  from the membrane the last call left in their scratch buffer (purity, determinism,
  state_roundtrip, batch_invariance).
* :mod:`~reference_models.buggy.registry_reset` -- spiking neurons reset through a list of
  instances their class keeps, which no copy is added to (tied_weights).
* :mod:`~reference_models.buggy.counted_flow_shift` -- a conditional flow whose transform's
  shift grows with a count of calls (determinism, state_roundtrip, batch_invariance).
* :mod:`~reference_models.buggy.first_adapter` -- the adapter mixture giving every sample the
  first sample's adapter (batch_invariance).
* :mod:`~reference_models.buggy.batch_mean_film` -- a FiLM layer's scale and shift averaged
  over the batch (batch_invariance).
* :mod:`~reference_models.buggy.unmasked_mean_pool` -- a Hugging Face-style classifier that
  takes ``attention_mask`` and mean-pools over every token, padding included
  (padding_invariance).
* :mod:`~reference_models.buggy.unmasked_mask_pool` -- an encoder in x-transformers'
  convention (``forward(x, mask=None)``) whose mean pool ignores the mask
  (padding_invariance).
* :mod:`~reference_models.buggy.lens_off_by_one` -- float features with an optional
  ``lens=None`` whose validity mask keeps one padding step (padding_invariance).
* :mod:`~reference_models.buggy.unpassed_padding_mask` -- a classifier on
  ``nn.TransformerEncoder`` that pools over the tokens but never hands its
  ``src_key_padding_mask`` to the encoder (padding_invariance).
* :mod:`~reference_models.buggy.zero_masked_router` -- a top-2 token router whose
  padding is scored 0, with which a valid token's ReLU score of 0 ties
  (padding_invariance).
* :mod:`~reference_models.buggy.batch_topk_depth` -- a mixture-of-depths whose routed
  tokens are the top ones of the whole batch, not of each sequence (batch_invariance).
* :mod:`~reference_models.buggy.hook_closure` -- a backward hook registered in
  ``__init__`` as a closure over ``self``: every copy updates the original (tied_weights).
* :mod:`~reference_models.buggy.keyword_summary_step` -- a pre-norm wrapper that prepends
  the mean of every context step, padding included, to what it hands on through
  ``**kwargs`` (padding_invariance).
* :mod:`~reference_models.buggy.unpacked_crf_tagger` -- a BiLSTM-CRF tagger whose
  bidirectional LSTM runs over the padding, not packed (padding_invariance).
* :mod:`~reference_models.buggy.batch_centred_bags` -- bags pooled one sample at a time,
  each centred on the whole batch's mean instead of its own (batch_invariance).
* :mod:`~reference_models.buggy.optional_gate_batch_mean` -- a layer behind an optional
  control's gate centred on the batch's mean (batch_invariance).
* :mod:`~reference_models.buggy.unpacked_flat_tagger` -- a tagger of concatenated valid
  steps whose bidirectional LSTM runs over the padding (padding_invariance).
* :mod:`~reference_models.buggy.batch_mean_initial_state` -- a recurrence written out whose
  cell starts from the batch's mean (batch_invariance).
* :mod:`~reference_models.buggy.float32_padded_start` -- a float32-only masked recurrence
  whose state starts from a mean over the padding (padding_invariance).
* :mod:`~reference_models.buggy.expanded_alias_tie` -- a layer's weight expanded per head and
  registered as a Parameter of its own (tied_weights, state_roundtrip).
* :mod:`~reference_models.buggy.batch_scaled_column` -- a table's continuous column scaled by
  its maximum over the batch (batch_invariance).
* :mod:`~reference_models.buggy.one_step_batch_softmax` -- a parallel scan whose one-step form
  softmaxes its gate over the batch (batch_invariance).
* :mod:`~reference_models.buggy.bidirectional_last_item` -- a session recommender whose
  bidirectional GRU reads the padding (padding_invariance).
* :mod:`~reference_models.buggy.padded_length_mean` -- a mean pooled over the mask divided by
  the padded length (padding_invariance).
* :mod:`~reference_models.buggy.unapplied_adapter` -- an adapter looked up under another
  name than it was built with, never added (coverage).
* :mod:`~reference_models.buggy.unmasked_chain_pooling` -- a chain of feature modules whose
  pooling weighs the padding in (padding_invariance).
* :mod:`~reference_models.buggy.batch_mean_integrator` -- integrators after a Linear that
  start from the batch's mean (batch_invariance).
* :mod:`~reference_models.buggy.batch_centred_forecast` -- a forecaster's features centred by
  their mean over the batch (batch_invariance).
* :mod:`~reference_models.buggy.any_done_reset` -- a recurrent agent that resets every
  environment's state when any episode ends (batch_invariance).
* :mod:`~reference_models.buggy.padded_segment_mean` -- a segment's summary divided by the
  padded length (padding_invariance).
* :mod:`~reference_models.buggy.missing_reset` -- a recurrent agent that hands its state on
  where an episode starts (episode_reset).
* :mod:`~reference_models.buggy.carried_hidden` -- the final hidden state kept on ``self``
  and reused by the next call (padding_invariance, determinism, state_roundtrip,
  batch_invariance).
* :mod:`~reference_models.buggy.short_total_length` -- ``pad_packed_sequence`` with
  ``total_length=lengths.max()`` cuts a tagger's output to the batch's longest sequence
  (padding_invariance, batch_invariance).
* :mod:`~reference_models.buggy.unpacking_gru` -- a GRU subclass that re-pads its packed
  input and runs over the padding: ``h_n`` is wrong for shorter sequences (packed_rnn).
* :mod:`~reference_models.buggy.straight_through_pool` -- a softmax classifier whose
  straight-through pooling surrogate averages over the padding: right values, gradients that
  read the padding, invisible under a sum loss (padding_invariance).
* :mod:`~reference_models.buggy.tensor_attribute` -- a constant matrix kept in a plain
  attribute, not a buffer: ``.to(torch.float64)`` does not reach it (dtype_agreement).
* :mod:`~reference_models.buggy.default_dtype_state` -- a recurrent state made in forward
  with ``torch.zeros(n, h)``: float32 whatever the input (dtype_agreement).
* :mod:`~reference_models.buggy.refactor_threshold` -- a refactor of the gated net that
  changed its branch condition at the threshold, ``>=`` for ``>`` (refactor_agreement).
* :mod:`~reference_models.buggy.refactor_path_math` -- a refactor of the attention model
  that changed the math of the path through ``refine`` (refactor_agreement).
* :mod:`~reference_models.buggy.refactor_mismapped` -- a refactor of the attention model
  whose state map copies ``q`` where ``k`` belongs (refactor_agreement).

The refactor twins are not built like the gated ``DynamicNet``: each is its good twin with
one change, and declares the old model in its ``__dyncheck__``.

:data:`BUGGY_TARGETS` maps each target to the invariants that must catch it (every other
invariant must pass); ``runs`` means the model cannot run at all, so every check reports
the crash.
"""

from __future__ import annotations

__all__ = ["BUGGY_TARGETS"]

BUGGY_TARGETS: dict[str, tuple[str, ...]] = {
    "reference_models.buggy.unseeded_generator:Model": ("determinism", "dtype_agreement", "batch_invariance"),
    "reference_models.buggy.call_counter:Model": ("determinism", "state_roundtrip", "batch_invariance"),
    "reference_models.buggy.nan_output:Model": ("finite", "grad_isolation"),
    "reference_models.buggy.nan_gradient:Model": ("finite", "grad_isolation"),
    "reference_models.buggy.nan_gradient_behind_norms:Model": ("finite", "grad_isolation"),
    "reference_models.buggy.nan_behind_flat_channel:Model": ("finite", "grad_isolation"),
    "reference_models.buggy.shared_original:SharedNet": ("runs",),
    "reference_models.buggy.masked_gate:Model": ("grad_isolation",),
    "reference_models.buggy.threshold_off_by_one:Model": ("grad_isolation",),
    "reference_models.buggy.detached_input:Model": ("grad_isolation",),
    "reference_models.buggy.item_temperature:Model": ("grad_isolation",),
    "reference_models.buggy.plain_random_features:Model": ("state_roundtrip",),
    "reference_models.buggy.batch_scaled_boxes:Model": ("batch_invariance",),
    "reference_models.buggy.plain_list_layers:Model": ("state_roundtrip", "dtype_agreement"),
    "reference_models.buggy.required_mask_mean:Model": ("padding_invariance",),
    "reference_models.buggy.set_mean_over_padding:Model": ("padding_invariance",),
    "reference_models.buggy.held_path:Model": ("state_roundtrip",),
    "reference_models.buggy.batch_routed_condconv:Model": ("batch_invariance",),
    "reference_models.buggy.windowed_padding_nan:Model": ("finite",),
    "reference_models.buggy.inplace_branch:Model": ("grad_isolation", "finite", "tied_weights", "dtype_agreement"),
    "reference_models.buggy.argmax_router:Model": ("grad_isolation",),
    "reference_models.buggy.one_hot_twice:Model": ("coverage",),
    "reference_models.buggy.unmasked_conv_padding:Model": ("padding_invariance",),
    "reference_models.buggy.relative_conv_leak:Model": ("padding_invariance",),
    "reference_models.buggy.normalised_over_padding:Model": ("padding_invariance",),
    "reference_models.buggy.group_norm_frames:Model": ("padding_invariance",),
    "reference_models.buggy.batch_mean_features:Model": ("batch_invariance", "padding_invariance"),
    "reference_models.buggy.shared_hidden:Model": ("batch_invariance",),
    "reference_models.buggy.averaged_cell_state:Model": ("batch_invariance",),
    "reference_models.buggy.time_mean_on_batch_axis:Model": ("batch_invariance", "causality"),
    "reference_models.buggy.dense_moe:Model": ("grad_isolation",),
    "reference_models.buggy.checkpointed_mask:Model": ("grad_isolation",),
    "reference_models.buggy.zero_grad_trick:Model": ("grad_isolation",),
    "reference_models.buggy.top1_softmax_router:Model": ("grad_isolation",),
    "reference_models.buggy.cloned_tie:Model": ("tied_weights",),
    "reference_models.buggy.reinit_tie:Model": ("tied_weights",),
    "reference_models.buggy.lazy_tie:Model": ("tied_weights", "state_roundtrip"),
    "reference_models.buggy.transposed_tie:Model": ("tied_weights",),
    "reference_models.buggy.data_alias_tie:Model": ("tied_weights",),
    "reference_models.buggy.closure_tie:Model": ("tied_weights",),
    "reference_models.buggy.closure_tie_factory:make_model": ("tied_weights",),
    "reference_models.buggy.grown_layer:Model": ("state_roundtrip", "determinism", "tied_weights"),
    "reference_models.buggy.actnorm_flag:Model": ("state_roundtrip",),
    "reference_models.buggy.inplace_jitter:Model": ("purity",),
    "reference_models.buggy.eval_running_stats:Model": ("determinism", "purity", "batch_invariance"),
    "reference_models.buggy.batch_mean_branch:Model": ("batch_invariance",),
    "reference_models.buggy.batch_scaled:Model": ("batch_invariance",),
    "reference_models.buggy.per_sample_coin:Model": ("batch_invariance",),
    "reference_models.buggy.capacity_routing:Model": ("batch_invariance",),
    "reference_models.buggy.naive_log_softmax:Model": ("dtype_agreement", "finite", "grad_isolation"),
    "reference_models.buggy.naive_variance:Model": ("dtype_agreement",),
    "reference_models.buggy.pinned_naive_variance:Model": ("dtype_agreement",),
    "reference_models.buggy.last_padded_step:Model": ("padding_invariance", "batch_invariance"),
    "reference_models.buggy.never_unsorted:Model": ("padding_invariance", "batch_invariance"),
    "reference_models.buggy.unpacked_rnn:Model": ("padding_invariance",),
    "reference_models.buggy.mean_over_padding:Model": ("padding_invariance",),
    "reference_models.buggy.dict_padded_sum:Model": ("padding_invariance",),
    "reference_models.buggy.dict_frames_padded_sum:Model": ("padding_invariance",),
    "reference_models.buggy.nested_mask_mean:Model": ("padding_invariance",),
    "reference_models.buggy.batch_scaled_logits:Model": ("batch_invariance",),
    "reference_models.buggy.dropped_pooler:Model": ("grad_isolation",),
    "reference_models.buggy.unmasked_mean_pool:Model": ("padding_invariance",),
    "reference_models.buggy.unmasked_mask_pool:Model": ("padding_invariance",),
    "reference_models.buggy.lens_off_by_one:Model": ("padding_invariance",),
    "reference_models.buggy.unpassed_padding_mask:Model": ("padding_invariance",),
    "reference_models.buggy.zero_masked_router:Model": ("padding_invariance",),
    "reference_models.buggy.hook_closure:Model": ("tied_weights",),
    "reference_models.buggy.keyword_summary_step:Model": ("padding_invariance",),
    "reference_models.buggy.unpacked_crf_tagger:Model": ("padding_invariance",),
    "reference_models.buggy.batch_centred_bags:Model": ("batch_invariance",),
    "reference_models.buggy.optional_gate_batch_mean:Model": ("batch_invariance",),
    "reference_models.buggy.unpacked_flat_tagger:Model": ("padding_invariance",),
    "reference_models.buggy.batch_mean_initial_state:Model": ("batch_invariance",),
    "reference_models.buggy.float32_padded_start:Model": ("padding_invariance",),
    "reference_models.buggy.expanded_alias_tie:Model": ("tied_weights", "state_roundtrip"),
    "reference_models.buggy.batch_scaled_column:Model": ("batch_invariance",),
    "reference_models.buggy.one_step_batch_softmax:Model": ("batch_invariance",),
    "reference_models.buggy.bidirectional_last_item:Model": ("padding_invariance",),
    "reference_models.buggy.padded_length_mean:Model": ("padding_invariance",),
    "reference_models.buggy.unapplied_adapter:Model": ("coverage",),
    "reference_models.buggy.unmasked_chain_pooling:Model": ("padding_invariance",),
    "reference_models.buggy.batch_mean_integrator:Model": ("batch_invariance",),
    "reference_models.buggy.batch_centred_forecast:Model": ("batch_invariance",),
    "reference_models.buggy.any_done_reset:Model": ("batch_invariance",),
    "reference_models.buggy.padded_segment_mean:Model": ("padding_invariance",),
    "reference_models.buggy.missing_reset:Model": ("episode_reset",),
    "reference_models.buggy.carried_hidden:Model": (
        "padding_invariance", "determinism", "state_roundtrip", "batch_invariance",
    ),
    "reference_models.buggy.short_total_length:Model": ("padding_invariance", "batch_invariance"),
    "reference_models.buggy.unpacking_gru:Model": ("packed_rnn",),
    "reference_models.buggy.straight_through_pool:Model": ("padding_invariance",),
    "reference_models.buggy.tensor_attribute:Model": ("dtype_agreement",),
    "reference_models.buggy.default_dtype_state:Model": ("dtype_agreement",),
    "reference_models.buggy.refactor_threshold:Model": ("refactor_agreement",),
    "reference_models.buggy.refactor_path_math:Model": ("refactor_agreement",),
    "reference_models.buggy.refactor_mismapped:Model": ("refactor_agreement",),
    "reference_models.buggy.padded_list:Model": ("batch_invariance",),
    "reference_models.buggy.stacked_batch_mean:Model": ("batch_invariance",),
    "reference_models.buggy.unsaved_running_stats:Model": ("state_roundtrip",),
    "reference_models.buggy.eval_codebook_update:Model": ("purity", "determinism", "batch_invariance"),
    "reference_models.buggy.carried_membrane:Model": ("purity", "determinism", "state_roundtrip", "batch_invariance"),
    "reference_models.buggy.registry_reset:Model": ("tied_weights",),
    "reference_models.buggy.batch_mean_film:Model": ("batch_invariance",),
    "reference_models.buggy.counted_flow_shift:Model": ("determinism", "state_roundtrip", "batch_invariance"),
    "reference_models.buggy.first_adapter:Model": ("batch_invariance",),
    "reference_models.buggy.packed_last_step:Model": ("batch_invariance",),
    "reference_models.buggy.centred_conv:Model": ("causality",),
    "reference_models.buggy.future_mask:Model": ("causality",),
    "reference_models.buggy.length_scaled_positions:Model": ("causality",),
    "reference_models.buggy.any_ended_decoder:Model": ("batch_invariance",),
    "reference_models.buggy.unheld_cell_state:Model": ("padding_invariance",),
    "reference_models.buggy.normalised_over_batch:Model": ("batch_invariance",),
    "reference_models.buggy.centred_crops:Model": ("batch_invariance",),
    "reference_models.buggy.all_task_heads:Model": ("grad_isolation",),
    "reference_models.buggy.unreset_cache:Model": ("determinism", "batch_invariance"),
    "reference_models.buggy.batch_topk_depth:Model": ("batch_invariance",),
}

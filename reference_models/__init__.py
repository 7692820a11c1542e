"""Reference models for dyncheck: ports of the founding systems and seeded bugs.

The correct models (each in its own module, so that importing this package does not
import torch):

* :mod:`reference_models.gated` -- ``DynamicNet``: fc2 runs only when ``control > 0.5``.
* :mod:`reference_models.random_depth` -- ``DynamicNet``: the hidden layer is applied
  ``random.randint(0, 3)`` times, drawn from Python's ``random`` module.
* :mod:`reference_models.shared` -- ``SharedNet``: three layers tied to one weight, in a
  form that runs (the founding version cannot; see the module docstring).
* :mod:`reference_models.classifier` -- ``DynamicClassifier``: a branch on the input's
  width whose second arm (fc3) can never run.
* :mod:`reference_models.rnn` -- ``DynamicRNN``: an ``nn.RNN`` over packed sequences of
  different lengths.
* :mod:`reference_models.paddle_branch` -- ``MyModel``: a port of a Paddle model whose
  middle layer runs with probability 1/2.
* :mod:`reference_models.routing` -- ``TopOneMoE``: top-1 routing weighted by its gate,
  the correct counterpart of the routing bugs.
* :mod:`reference_models.tied_lm` -- ``TiedLanguageModel``: embedding -> GRU -> linear with
  the decoder's weight tied to the embedding, the correct counterpart of the tying bugs.
* :mod:`reference_models.bilstm` -- ``BiLSTMClassifier``: a two-layer bidirectional LSTM
  over a batch packed with ``enforce_sorted=False``, the correct counterpart of the padding
  bugs.
* :mod:`reference_models.time_major_gru` -- ``GRUTagger``: a ``batch_first=False`` GRU
  tagger whose per-step output keeps the padded length (``total_length``).
* :mod:`reference_models.top_two_moe` -- ``TopTwoMoE``: top-2 routing weighted by softmax
  gates that saturate at large inputs, each expert run only on its samples.
* :mod:`reference_models.norm_encoder` -- ``NormEncoder``: ``nn.TransformerEncoder`` with its
  final LayerNorm (the sum of its output is constant: the default loss must not be a sum).
* :mod:`reference_models.softmax_classifier` -- ``SoftmaxClassifier``: returns probabilities
  (a softmax last, summing to 1).
* :mod:`reference_models.fused_mlp` -- ``FusedMLP``: a fused activation kernel that refuses
  float64, as fused and quantised kernels do (``dtype_agreement`` skips, naming it).
* :mod:`reference_models.grouped_experts` -- ``GroupedExpertsMoE``: top-2 experts run through
  ``grouped_mm``, which refuses float64, with Hugging Face's switch to plain matmuls
  (``set_experts_implementation("eager")``), which the skip names.
* :mod:`reference_models.noisy_hidden` -- ``NoisyHidden``: noise on the hidden units in eval
  mode too, drawn in the activation's own dtype.
* :mod:`reference_models.causal_attention` -- ``CausalSelfAttention``: a tiny causal
  self-attention block checked on sequences down to length 1, where a softmax over one key
  leaves the query and key projections nothing to move. ``RotarySelfAttention``: the same
  with rotary position embeddings applied by a ``staticmethod`` kept on the instance, which
  ``copy.deepcopy`` refuses.
* :mod:`reference_models.loop_moe` -- ``LoopMoE``: top-1 routing that calls every expert on
  its slice ``x[idx]``, empty when no sample was routed to it.
* :mod:`reference_models.early_exit` -- ``EarlyExitNet``: every block in training; in eval
  a sample stops at the first confident exit and the call returns when all have stopped.
* :mod:`reference_models.builtin_layers` -- factories returning torch's own layers as the
  target (``nn.LSTM``, ``nn.GRU``, ``nn.TransformerEncoderLayer``, ``nn.MultiheadAttention``).
* :mod:`reference_models.hf_style` -- ``TinyCausalLM``: a causal language model in the
  Hugging Face style (config dataclass, ``input_ids``/``attention_mask``, a ``ModelOutput``-like
  result with a cache, cross-attention switched on by ``encoder_hidden_states``).
* :mod:`reference_models.attention` -- ``Attention``: self-attention with separate ``q``,
  ``k``, ``v`` projections and a refinement block that runs when ``control > 0.5``.

Refactored twins, each declaring the model it must still agree with
(``__dyncheck__ = {"against": ..., "state_map": ...}``, checked by ``refactor_agreement``):

* :mod:`reference_models.renamed_gated` -- ``GatedNet``: the gated net with its layers
  renamed (a dict state map).
* :mod:`reference_models.fused_attention` -- ``FusedAttention``: ``q``, ``k``, ``v`` fused
  into one ``qkv`` (a callable state map).
* :mod:`reference_models.batched_moe` -- ``BatchedTopOneMoE``: the top-1 mixture's loop over
  experts replaced by one batched dispatch over stacked weights. ``ExpertBank``: that
  dispatch alone, each sample through the expert an integer input names.
* :mod:`reference_models.lenet` -- ``LeNet``: not dynamic; LeNet-5, whose pooling and
  first Linear run on images of 32-35 pixels only (inferred by calling it).
  ``FeatureLeNet``: the same with a required ``return_features: bool`` beside the image.
* :mod:`reference_models.text_cnn` -- ``TextCNN``: not dynamic; a convolutional text
  classifier whose widest convolution needs 4 tokens (inferred by calling it).
  ``MaskedTextCNN``: the same over a padded batch with its lengths, pooling only the
  windows inside each sentence (a sentence shorter than 4 tokens is never given alone).
* :mod:`reference_models.checkpointed` -- ``CheckpointedMLP``: residual blocks run under
  reentrant gradient checkpointing in training (the blocks' parameters are outside the
  output's autograd graph, and get their gradients from the checkpoint's own backward).
* :mod:`reference_models.hf_patterns` -- ``PatternEncoder``: an encoder with four patterns
  of library models (a position table used through ``.weight``, a float32-pinned softmax
  after a ``finfo(dtype).min`` mask, a bias used only with ``token_type_ids``, a
  straight-through Gumbel gate).
* :mod:`reference_models.length_branch` -- ``LengthBranch``: a branch on the sequence's
  length, whose first layer in the source takes the input mean-pooled over time.
* :mod:`reference_models.sequence_list` -- ``SequenceListClassifier``: an LSTM over a list
  of variable-length sequences (``forward(self, seqs: list[torch.Tensor])``), packed;
  ``StackedSequenceTagger``: a GRU over a list of sequences of one length, stacked.
* :mod:`reference_models.running_norm` -- ``RunningNormClassifier``: a hand-written batch
  norm whose running statistics, registered buffers, only eval mode reads;
  ``UnbiasedNormClassifier``: the same with the batch's unbiased variance (NaN at batch 1).
* :mod:`reference_models.timestep_embedding` -- ``GuidedDenoiser``: a diffusion denoiser
  with DDPM's sinusoidal timestep embedding pinned to float32 and a class condition dropped
  in training.
* :mod:`reference_models.ema_codebook` -- ``EMAQuantizedAutoencoder``: a VQ-VAE whose
  codebook (three buffers) moves by exponential moving averages in training.
* :mod:`reference_models.elastic_width` -- ``ElasticMLP``: a once-for-all MLP whose width
  per call, an int, slices its weights.
* :mod:`reference_models.flow_distribution` -- ``ConditionalFlow``: a conditional flow that
  returns its distribution, through a ``torch.distributions.Transform`` (compared by identity).
* :mod:`reference_models.film` -- ``FiLMConditioned``: a conditioning vector named like a
  control (``condition``) turned by a Linear into a scale and shift per hidden unit.
* :mod:`reference_models.ssm_cache` -- ``TinySSM``: a Mamba-style state-space model whose
  layers share a formula initialisation and whose output holds a cache for the next call.
* :mod:`reference_models.dict_batch` -- ``DictBatchClassifier``: a GRU classifier taking its
  batch as a dict (``batch["tokens"]``, ``batch["lengths"]``).
* :mod:`reference_models.graph_conv` -- ``GraphConv``: a hand-written graph convolution over
  ``edge_index``, which needs (and declares) a spec.
* :mod:`reference_models.deep_norm` -- ``DeepNormNet``: 24 blocks of convolution and
  train-mode BatchNorm, as EfficientNet builds them, whose gradients overflow on a batch of
  all-zero images (an innocent cause ``finite`` and ``grad_isolation`` do not report).
* :mod:`reference_models.depthwise_norm` -- ``DepthwiseNormNet``: 24 blocks of train-mode
  BatchNorm, SiLU and a depthwise convolution, whose gradients overflow float32 (not
  float64) when one channel is flat over the batch (an innocent cause).
* :mod:`reference_models.drop_path` -- ``DropPathNet``: residual blocks with a
  squeeze-excite gate and timm's per-sample stochastic depth (``DropPath``), which on some
  seeds drops every sample of a block (a random choice ``grad_isolation`` does not report).
* :mod:`reference_models.patch_dropout` -- ``PatchDropViT``: timm's patch dropout (EVA), a
  name computed from the image (the kept patches' indices) gathering a positional table
  in a helper: the image is not read as indices.
* :mod:`reference_models.einops_vit` -- ``EinopsViT``, ``PatchFeatures``: vit-pytorch's
  patch embedding, einops' ``Rearrange`` then a LayerNorm over the patches, bare and inside
  a feature extractor: the image is worked back from the pattern and the LayerNorm.
* :mod:`reference_models.liquid_rnn` -- ``LiquidRNN``: ncps' CfC, a cell that concatenates
  the step with the state it carries, a model that also takes one unbatched sequence: the
  input is found by calling it (4 features, as sequences).
* :mod:`reference_models.pre_norm_stack` -- ``PreNormStack``: 20 pre-norm blocks on image
  patches with zero biases (PVT v2's init), whose float32 gradients overflow on an all-zero
  image through LayerNorms of constant input, in eval mode too (not dtype_agreement's to report).
* :mod:`reference_models.squeeze_excite` -- ``SqueezeExciteNet``: MobileNetV3's and
  GhostNet's squeeze-excite, its reduction followed by ``nn.ReLU(inplace=True)``: the
  gradient still reaches a module an in-place activation overwrites.
* :mod:`reference_models.two_tower` -- ``TwoTower``: CLIP's shape, a forward that requires
  nothing but needs both its text and its images, and scores every image against every
  text.
* :mod:`reference_models.lazy_layers` -- ``LazyConvNet``: lazy convolution, BatchNorm and
  Linear layers, one on a gated branch: every check works on the model a dry run
  materialised.
* :mod:`reference_models.shared_exits` -- ``SharedExitNet``: early exits whose classifiers
  share one weight: a shared Parameter moves when the head that ran trains it.
* :mod:`reference_models.spectral_conv` -- ``SpectralConvNet``: a Fourier neural operator
  block with complex weights, compared as itself in float64 (complex128).
* :mod:`reference_models.per_image_boxes` -- ``BoxHead``: a detection head returning one
  tensor of kept boxes per image in a list, compared entry by entry.
* :mod:`reference_models.spectral_disc` -- ``SpectralDiscriminator``: a GAN discriminator
  under torch's spectral normalisation, whose power iteration moves on every train-mode call.
* :mod:`reference_models.local_attention` -- ``LocalAttentionLM``: GPT-Neo's local
  attention, its scores pinned to float32 and a padding mask in the model's dtype, which a
  float64 copy mixes (dtype_agreement runs its reference with such casts kept in float64).
* :mod:`reference_models.recurrent_lm` -- ``RecurrentLM``: RecurrentGemma's short
  convolution, whose one-step call reads the convolution's weight without calling it, and
  RWKV's decay, which on a sequence of one step reaches only the dropped state.
* :mod:`reference_models.landmark_attention` -- ``LandmarkAttention``: Nystromformer's
  attention through the segment means of a fixed length, whose reshape folds a batch of 2
  into half that length (each probed length must run at a batch of 3 too).
* :mod:`reference_models.decision_policy` -- ``DecisionPolicy``: a Decision Transformer,
  whose forward requires nothing and needs states, actions, returns-to-go and timesteps
  (the companion probe infers them together).
* :mod:`reference_models.einsum_moe` -- ``EinsumMoE``: a mixture of experts whose gate and
  experts are raw parameters used through ``einsum`` (its input is probed at the sizes of
  their parameters).
* :mod:`reference_models.padding_mask` -- ``MaskedTokenEncoder``: x-transformers'
  ``forward(x, mask=None)``, the mask True at tokens, drawn as a padding mask.
* :mod:`reference_models.latent_reader` -- ``LatentReader``: a Perceiver's latents
  cross-attending to the input, handed to the block as ``context=``, drawn as sequences.
* :mod:`reference_models.keyword_context` -- ``KeywordLatentEncoder``: a Perceiver's
  encoder whose input and mask reach the attention only through a wrapper's ``**kwargs``.
* :mod:`reference_models.masked_crf` -- ``MaskedCRFTagger``: a BiLSTM-CRF tagger on a
  padded batch, ``forward(tokens, tags, mask)``, as written with pytorch-crf.
* :mod:`reference_models.memory_tokens` -- ``MemoryTokenEncoder``: learned memory tokens
  beside a sequence, under ``nn.RMSNorm`` at its default ``eps=None``.
* :mod:`reference_models.named_bound` -- ``NamedBoundRNN``: a cell unrolled over a
  time-major sequence, the loop's bound held in a name (``n_steps, batch = x.shape[:2]``).
* :mod:`reference_models.feedback_memory` -- ``FeedbackMemory``: each step of a time-major
  sequence attends over the earlier steps' outputs, kept in a list the loop grows.
* :mod:`reference_models.hidden_membrane` -- ``HiddenMembraneSNN``: snntorch's
  ``init_hidden=True`` style, the membrane kept on the neuron module between steps.
* :mod:`reference_models.seq_first_attention` -- ``SeqFirstLM``: attention written by
  hand over time-major inputs, ``seq_len, batch_size, _ = x.shape`` (labml-nn, fairseq).
* :mod:`reference_models.bag_concat` -- ``BagConcat``: bags of vectors pooled one sample at
  a time, the rows gathered by a running ``torch.cat``.
* :mod:`reference_models.optional_gate` -- ``OptionalGateNet``: the gated net with an
  optional control, ``forward(x, control: float = 0.0)``.
* :mod:`reference_models.flat_tagger` -- ``FlatTagger``: a packed BiLSTM tagger returning
  every row's valid steps concatenated, ``[sum(lengths), tags]`` (flair without a CRF).
* :mod:`reference_models.learned_positions` -- ``LearnedPositionLM``: learned positions up
  to a required ``max_seq_len``, longer sequences refused.
* :mod:`reference_models.projected_recurrence` -- ``ProjectedRecurrence``: an SRU written
  out, every step's gates projected at once, then a loop over the time-major steps.
* :mod:`reference_models.float32_recurrence` -- ``Float32Recurrence``: a masked recurrence
  over a padded batch that runs in float32 only, as SRU's CPU kernel.
* :mod:`reference_models.per_head_weights` -- ``PerHeadWeights``: one layer's weight
  expanded per head in forward.
* :mod:`reference_models.picked_columns` -- ``PickedColumnsTabular``: a table whose columns
  forward picks by number, categorical ids into Embeddings of their own sizes.
* :mod:`reference_models.parallel_scan` -- ``ParallelScanGRU``: minGRU, its parallel form a
  scan written in forward (``cumsum``/``logcumsumexp`` over the steps), one step sequential.
* :mod:`reference_models.last_item` -- ``LastItemGRU``: RecBole's GRU4Rec, a session's next
  item scored at its last valid step, ``gather_indexes(output, item_seq_len - 1)``.
* :mod:`reference_models.mask_and_lengths` -- ``PackedMeanPool``: sentence-transformers' LSTM
  packed by the lengths and mean-pooled over the attention mask, both in the batch.
* :mod:`reference_models.svd_adapter` -- ``SVDAdapterLinear``: peft's AdaLoRA adapter, its
  singular values at zero and its rank a frozen Parameter in a ParameterDict.
* :mod:`reference_models.feature_chain` -- ``FeatureChain``: sentence-transformers'
  ``nn.Sequential`` of modules handing a dict of features on, embeddings then mean pooling.
* :mod:`reference_models.integrator_stack` -- ``IntegratorStack``: norse's
  ``SequentialState(Linear, LIF, ...)``, a layer after the Linear looping over the steps.
* :mod:`reference_models.categorical_table` -- ``ForecastEncoder``: pytorch-forecasting's dict
  batch, categorical variables picked as ``x["encoder_cat"][..., i]`` into tables of their own.
* :mod:`reference_models.episode_lstm` -- ``EpisodeLSTMAgent``: CleanRL's recurrent PPO agent,
  an LSTM stepped over ``[time, envs]`` with each environment's state reset by its done flag.
* :mod:`reference_models.segment_positions` -- ``SegmentLM``: a segment of at most 4 tokens
  (learned positions, ``assert n <= self.seq_len``) with an optional padding mask.
* :mod:`reference_models.staged_ema` -- ``StagedEMA``: a running centre a backward hook
  applies (routing-transformer's k-means), registered as a method a copy rebinds.
* :mod:`reference_models.token_router` -- ``TopKTokenRouter``: CoLT5's conditional
  computation, each sequence's top-2 tokens through a heavy branch, padding scored
  ``-inf``: its ties among equal scores are the kernel's order, not padding.
* :mod:`reference_models.adaptive_ode` -- ``AdaptiveODEClassifier``: an ODE block integrated
  by an adaptive solver with one step size for the batch, declaring its own tolerance.
* :mod:`reference_models.recommenders` -- ``FactorizationMachine``: categorical fields in one
  shared table, each shifted to its own rows by offsets; ``SparseBagsDLRM``: one bag of ids per
  field into EmbeddingBags; ``SequentialRecommender``: positions shaped like the item ids.
* :mod:`reference_models.depth_router` -- ``MixtureOfDepths``: each sequence's top half of
  tokens through a block; repeated tokens tie up to the batch's rounding.
* :mod:`reference_models.padded_features` -- ``FeatureSequenceEncoder``: x-transformers'
  ``ContinuousTransformerWrapper``, float features with an optional ``lens=None``, drawn as
  their lengths.
* :mod:`reference_models.key_padding` -- ``PaddedTransformerClassifier``: a classifier on
  ``nn.TransformerEncoder`` taking ``src_key_padding_mask=None``, True at padding.
* :mod:`reference_models.layer_stack` -- ``LayerStack``: x-transformers' ``AttentionLayers``,
  whose input no layer in the source describes (probed at its parameters' sizes).
* :mod:`reference_models.length_mask` -- ``LengthMaskedConformer``: torchaudio's
  ``Conformer`` layout, its padding mask built from ``lengths.max()``: it takes only
  batches padded to their longest sequence (drawn as such).
* :mod:`reference_models.zero_padded` -- ``ZeroPaddedAudioEncoder``: a wav2vec2-style
  convolution over raw audio that reads the padding, right for zero padding, as it
  declares (``padding_value``).
* :mod:`reference_models.raw_audio` -- ``RawAudioEncoder``: torchaudio's ``Wav2Vec2Model``
  layout, raw samples ``[batch, samples]`` with ``lengths=None``, frames at another rate.
* :mod:`reference_models.caption_decoder` -- ``CaptionDecoder``: an image-captioning
  decoder, image features (vectors) before the caption, lengths packed longest first.
* :mod:`reference_models.attention_decoder` -- ``AttentionDecoder``: a seq2seq decoder with
  additive attention, the encoder's outputs and its last hidden state ``[1, batch, hidden]``
  in, greedy decoding for a fixed number of steps.
* :mod:`reference_models.bag_classifier` -- ``BagClassifier``: a text classifier over an
  ``nn.EmbeddingBag``, ``forward(text, offsets)``.
* :mod:`reference_models.translation_transformer` -- ``TranslationTransformer``: a
  translation model on ``nn.Transformer``, time-major, every mask a required argument.
* :mod:`reference_models.packed_seq2seq` -- ``PackedSeq2Seq``: an attention seq2seq model
  over packed sequences, its lengths named ``src_len``, teacher forcing by ``random.random()``.
* :mod:`reference_models.crf_tagger` -- ``BiLSTMCRFTagger``: PyTorch's tutorial tagger, one
  unbatched sentence, Viterbi decoding in a Python loop.
* :mod:`reference_models.hidden_state` -- ``HiddenStateLM``: a GRU language model whose
  hidden state the caller passes in (``forward(tokens, hidden)``).
* :mod:`reference_models.word_lm` -- ``WordLanguageModel``: PyTorch's word-language-model
  layout, time-major token ids and the LSTM's ``(h_0, c_0)`` from the caller;
  ``WordTransformerLM``: the same example's time-major Transformer under a causal mask.
* :mod:`reference_models.feature_transformer` -- ``FeatureTransformer``: a time-series
  forecaster, float features through a Linear into a transformer encoder.
* :mod:`reference_models.conditional` -- ``ConditionalGenerator``: a conditional GAN's
  generator, a class label embedded beside the noise; ``TimestepDenoiser``: a diffusion
  denoiser whose timestep goes through a sinusoidal embedding.
* :mod:`reference_models.deep_sets` -- ``DeepSets``: padded sets, a required mask multiplied
  into the elements' features, a mean over the real ones.
* :mod:`reference_models.block_drop` -- ``BlockDropNet``: residual blocks kept by Bernoulli
  samples of a policy's probabilities in training, skipped per sample in eval.
* :mod:`reference_models.supernet` -- ``Supernet``: a one-shot NAS supernet whose forward
  takes the architecture, one candidate per cell; ``SlimmableMLP``: layers sliced to a
  required width multiplier.
* :mod:`reference_models.ctc_model` -- ``CTCModel``: a strided Conv1d subsampling the frames,
  a packed bidirectional LSTM over the output lengths, time-major CTC log-probabilities.
* :mod:`reference_models.cond_conv` -- ``CondConv2d``: a kernel mixed per sample from
  experts' kernels by a routing of the pooled image, one grouped convolution.
* :mod:`reference_models.packed_input` -- ``PackedClassifier`` and ``PackedTagger``: a
  forward that takes a ``PackedSequence`` (annotated, or named ``packed_tokens``), a GRU
  classifier and a tagger that pads its LSTM's output back.
* :mod:`reference_models.revin_linear` -- ``RevINLinear``: a linear forecaster over the
  steps of ``[batch, steps, channels]`` series, with reversible instance normalisation.
* :mod:`reference_models.functional_linear` -- ``FunctionalLinearMLP``: PyTorch Geometric's
  MLP, each linear layer ``F.linear`` over its own weight, then BatchNorm, ReLU and dropout.
* :mod:`reference_models.functional_weights` -- ``BayesianMLP``: a hidden layer whose weight is
  sampled per call in training (``F.linear`` over ``mu + softplus(rho) * eps``);
  ``FilterbankSeparator``: a waveform through ``F.conv1d`` over learned filters and back.
* :mod:`reference_models.relative_lengths` -- ``RelativeLengthsEncoder``: a speech encoder
  whose lengths are SpeechBrain's relative ``wav_lens``, fractions of the padded length.
* :mod:`reference_models.nbeats` -- ``NBeats``: N-BEATS's fully connected blocks over a
  series and a mask that only multiplies the residuals.
* :mod:`reference_models.tabular` -- ``CategoricalTabular``: categorical columns embedded
  each by its own member of a ModuleList (fastai's tabular model), beside continuous ones.
  ``TokenizedTabular``: rtdl's FT-Transformer tokenizer, each kind of column by its module in
  a loop over ``(value, module)`` pairs; ``ParameterTokenTabular``: the continuous columns by
  raw per-column weights, as rtdl's ``LinearEmbeddings``.
* :mod:`reference_models.causal_tcn` -- ``CausalTCN``: a temporal convolutional network,
  dilated convolutions whose right padding a ``Chomp1d`` cuts, declared causal.
* :mod:`reference_models.time_features` -- ``TimeFeatureForecaster``: Informer's embedding,
  a series (a Conv1d over it permuted) and its time features (a Linear) added step by step.
* :mod:`reference_models.greedy_decoder` -- ``GreedyDecoder``: a GRU encoder and a GRU cell
  decoding greedily inside forward until every sample has emitted its end token.
* :mod:`reference_models.beam_search` -- ``BeamSearchDecoder``: a beam search over a GRU cell
  for each sample in turn, a loop over the batch whose inner loop alone carries a state.
* :mod:`reference_models.unrolled_cell` -- ``UnrolledGRU``: a GRU cell unrolled by hand over
  padded sequences, each row's state held once its sequence has ended; ``SteppedGRU``: the
  cell unrolled for ``num_steps`` steps, a count beside the sequence.
* :mod:`reference_models.adapter_mixture` -- ``AdapterMixture``: a low-rank adapter per
  sample, picked from stacked weights by ids handed to a custom layer beside the features.
* :mod:`reference_models.carried_memory` -- ``CarriedMemory``: a gated memory the caller
  carries between calls beside the features, reset to zeros on a new episode.
* :mod:`reference_models.smoothed_loss` -- ``LabelSmoothedClassifier``: a classifier that
  returns its label-smoothed loss beside the logits when forward is handed the targets.
* :mod:`reference_models.topk_attention` -- ``TopKAttention``: sparse self-attention written
  out in forward, each query keeping its top ``k`` keys.
* :mod:`reference_models.multi_scale` -- ``MultiScaleClassifier``: an image run at one of
  the scale factors a tuple holds, picked by an ``int`` index per call.
* :mod:`reference_models.spiking` -- ``LeakySNN``: snntorch's spiking network, leaky
  integrate-and-fire neurons with a surrogate gradient, run over a time-major input one
  step at a time (``data[step]`` for ``step in range(data.size(0))``). ``LeakyLayerSNN``: the
  neurons as ``snn.Leaky`` modules, each keeping its last membrane in a scratch buffer.
  ``ResetLeakySNN``: ``init_hidden=True`` neurons keeping their membrane on themselves,
  reset at the start of each call through the model's own modules.
* :mod:`reference_models.two_views` -- ``TwoViewContrast``: a contrastive model handed a list
  of batches, one per view of the same samples, scoring each sample's views against its first;
  ``MultiCropWrapper``: DINO's multi-crop wrapper, each crop's outputs concatenated in turn.
* :mod:`reference_models.task_heads` -- ``TaskHeads``: a shared trunk and one head per task,
  the head of ``task: int`` run alone.
* :mod:`reference_models.right_context` -- ``RightContextEncoder``: attention over padded frames
  that reads the frames past the longest sequence as right context (torchaudio's Emformer).
* :mod:`reference_models.module_network` -- ``ModuleNetwork``: a neural module network whose
  per-sample program runs modules that read the encoded question, or not.

Every target in :data:`GOOD_TARGETS` must pass every invariant that applies to it. The
deliberately broken models live in :mod:`reference_models.buggy`.
"""

from __future__ import annotations

__all__ = ["GOOD_TARGETS"]

GOOD_TARGETS = (
    "reference_models.gated:DynamicNet",
    "reference_models.random_depth:DynamicNet",
    "reference_models.shared:SharedNet",
    "reference_models.classifier:DynamicClassifier",
    "reference_models.rnn:DynamicRNN",
    "reference_models.paddle_branch:MyModel",
    "reference_models.routing:TopOneMoE",
    "reference_models.tied_lm:TiedLanguageModel",
    "reference_models.bilstm:BiLSTMClassifier",
    "reference_models.time_major_gru:GRUTagger",
    "reference_models.top_two_moe:TopTwoMoE",
    "reference_models.norm_encoder:NormEncoder",
    "reference_models.softmax_classifier:SoftmaxClassifier",
    "reference_models.fused_mlp:FusedMLP",
    "reference_models.grouped_experts:GroupedExpertsMoE",
    "reference_models.noisy_hidden:NoisyHidden",
    "reference_models.causal_attention:CausalSelfAttention",
    "reference_models.causal_attention:RotarySelfAttention",
    "reference_models.loop_moe:LoopMoE",
    "reference_models.early_exit:EarlyExitNet",
    "reference_models.builtin_layers:bidirectional_lstm",
    "reference_models.builtin_layers:time_major_gru",
    "reference_models.builtin_layers:encoder",
    "reference_models.builtin_layers:encoder_layer",
    "reference_models.builtin_layers:cross_attention",
    "reference_models.hf_style:TinyCausalLM",
    "reference_models.hf_style:CROSS_ATTENTION_SPEC",
    "reference_models.attention:Attention",
    "reference_models.renamed_gated:GatedNet",
    "reference_models.fused_attention:FusedAttention",
    "reference_models.batched_moe:BatchedTopOneMoE",
    "reference_models.batched_moe:ExpertBank",
    "reference_models.lenet:LeNet",
    "reference_models.lenet:FeatureLeNet",
    "reference_models.text_cnn:TextCNN",
    "reference_models.text_cnn:MaskedTextCNN",
    "reference_models.checkpointed:CheckpointedMLP",
    "reference_models.hf_patterns:PatternEncoder",
    "reference_models.length_branch:LengthBranch",
    "reference_models.sequence_list:SequenceListClassifier",
    "reference_models.sequence_list:StackedSequenceTagger",
    "reference_models.running_norm:RunningNormClassifier",
    "reference_models.running_norm:UnbiasedNormClassifier",
    "reference_models.timestep_embedding:GuidedDenoiser",
    "reference_models.ema_codebook:EMAQuantizedAutoencoder",
    "reference_models.film:FiLMConditioned",
    "reference_models.unrolled_cell:SteppedGRU",
    "reference_models.spiking:LeakySNN",
    "reference_models.spiking:LeakyLayerSNN",
    "reference_models.spiking:ResetLeakySNN",
    "reference_models.multi_scale:MultiScaleClassifier",
    "reference_models.adapter_mixture:AdapterMixture",
    "reference_models.carried_memory:CarriedMemory",
    "reference_models.smoothed_loss:LabelSmoothedClassifier",
    "reference_models.topk_attention:TopKAttention",
    "reference_models.elastic_width:ElasticMLP",
    "reference_models.flow_distribution:ConditionalFlow",
    "reference_models.ssm_cache:TinySSM",
    "reference_models.dict_batch:DictBatchClassifier",
    "reference_models.dict_batch:DictMaskedClassifier",
    "reference_models.dict_batch:FeaturesPooler",
    "reference_models.dict_batch:DictFramesClassifier",
    "reference_models.dict_batch:NestedBatchClassifier",
    "reference_models.graph_conv:GraphConv",
    "reference_models.deep_norm:DeepNormNet",
    "reference_models.depthwise_norm:DepthwiseNormNet",
    "reference_models.drop_path:DropPathNet",
    "reference_models.patch_dropout:PatchDropViT",
    "reference_models.einops_vit:EinopsViT",
    "reference_models.einops_vit:PatchFeatures",
    "reference_models.liquid_rnn:LiquidRNN",
    "reference_models.pre_norm_stack:PreNormStack",
    "reference_models.squeeze_excite:SqueezeExciteNet",
    "reference_models.two_tower:TwoTower",
    "reference_models.local_attention:LocalAttentionLM",
    "reference_models.recurrent_lm:RecurrentLM",
    "reference_models.landmark_attention:LandmarkAttention",
    "reference_models.decision_policy:DecisionPolicy",
    "reference_models.einsum_moe:EinsumMoE",
    "reference_models.padding_mask:MaskedTokenEncoder",
    "reference_models.token_router:TopKTokenRouter",
    "reference_models.depth_router:MixtureOfDepths",
    "reference_models.adaptive_ode:AdaptiveODEClassifier",
    "reference_models.recommenders:FactorizationMachine",
    "reference_models.recommenders:SparseBagsDLRM",
    "reference_models.recommenders:SequentialRecommender",
    "reference_models.staged_ema:StagedEMA",
    "reference_models.latent_reader:LatentReader",
    "reference_models.keyword_context:KeywordLatentEncoder",
    "reference_models.masked_crf:MaskedCRFTagger",
    "reference_models.memory_tokens:MemoryTokenEncoder",
    "reference_models.named_bound:NamedBoundRNN",
    "reference_models.feedback_memory:FeedbackMemory",
    "reference_models.hidden_membrane:HiddenMembraneSNN",
    "reference_models.seq_first_attention:SeqFirstLM",
    "reference_models.bag_concat:BagConcat",
    "reference_models.optional_gate:OptionalGateNet",
    "reference_models.flat_tagger:FlatTagger",
    "reference_models.learned_positions:LearnedPositionLM",
    "reference_models.projected_recurrence:ProjectedRecurrence",
    "reference_models.float32_recurrence:Float32Recurrence",
    "reference_models.per_head_weights:PerHeadWeights",
    "reference_models.picked_columns:PickedColumnsTabular",
    "reference_models.parallel_scan:ParallelScanGRU",
    "reference_models.last_item:LastItemGRU",
    "reference_models.mask_and_lengths:PackedMeanPool",
    "reference_models.svd_adapter:SVDAdapterLinear",
    "reference_models.feature_chain:FeatureChain",
    "reference_models.integrator_stack:IntegratorStack",
    "reference_models.categorical_table:ForecastEncoder",
    "reference_models.episode_lstm:EpisodeLSTMAgent",
    "reference_models.segment_positions:SegmentLM",
    "reference_models.padded_features:FeatureSequenceEncoder",
    "reference_models.key_padding:PaddedTransformerClassifier",
    "reference_models.layer_stack:LayerStack",
    "reference_models.length_mask:LengthMaskedConformer",
    "reference_models.zero_padded:ZeroPaddedAudioEncoder",
    "reference_models.raw_audio:RawAudioEncoder",
    "reference_models.caption_decoder:CaptionDecoder",
    "reference_models.attention_decoder:AttentionDecoder",
    "reference_models.bag_classifier:BagClassifier",
    "reference_models.translation_transformer:TranslationTransformer",
    "reference_models.packed_seq2seq:PackedSeq2Seq",
    "reference_models.crf_tagger:BiLSTMCRFTagger",
    "reference_models.hidden_state:HiddenStateLM",
    "reference_models.word_lm:WordLanguageModel",
    "reference_models.word_lm:WordTransformerLM",
    "reference_models.feature_transformer:FeatureTransformer",
    "reference_models.lazy_layers:LazyConvNet",
    "reference_models.shared_exits:SharedExitNet",
    "reference_models.spectral_conv:SpectralConvNet",
    "reference_models.per_image_boxes:BoxHead",
    "reference_models.spectral_disc:SpectralDiscriminator",
    "reference_models.conditional:ConditionalGenerator",
    "reference_models.conditional:TimestepDenoiser",
    "reference_models.deep_sets:DeepSets",
    "reference_models.block_drop:BlockDropNet",
    "reference_models.supernet:Supernet",
    "reference_models.supernet:SlimmableMLP",
    "reference_models.ctc_model:CTCModel",
    "reference_models.cond_conv:CondConv2d",
    "reference_models.packed_input:PackedClassifier",
    "reference_models.packed_input:PackedTagger",
    "reference_models.tabular:CategoricalTabular",
    "reference_models.tabular:TokenizedTabular",
    "reference_models.tabular:ParameterTokenTabular",
    "reference_models.revin_linear:RevINLinear",
    "reference_models.functional_linear:FunctionalLinearMLP",
    "reference_models.functional_weights:BayesianMLP",
    "reference_models.functional_weights:FilterbankSeparator",
    "reference_models.relative_lengths:RelativeLengthsEncoder",
    "reference_models.nbeats:NBeats",
    "reference_models.causal_tcn:CausalTCN",
    "reference_models.time_features:TimeFeatureForecaster",
    "reference_models.greedy_decoder:GreedyDecoder",
    "reference_models.beam_search:BeamSearchDecoder",
    "reference_models.unrolled_cell:UnrolledGRU",
    "reference_models.two_views:TwoViewContrast",
    "reference_models.two_views:MultiCropWrapper",
    "reference_models.module_network:ModuleNetwork",
    "reference_models.task_heads:TaskHeads",
    "reference_models.right_context:RightContextEncoder",
)

"""Record attention maps and features of diffusers UNets.

- [`LayerSelector`][zerocon.attention.LayerSelector] — which layers (name pattern, cross/self, resolution).
- [`AttentionStore`][zerocon.attention.AttentionStore] — ``with store.attach(unet): ...`` records the selected layers.
- [`SelfAttentionInjection`][zerocon.attention.SelfAttentionInjection] — the edit pass attends with the reference's self-attention
  maps (Plug-and-Play), through the store's sink.
- [`AttentionRecords`][zerocon.attention.AttentionRecords] — a snapshot of one forward's records.
- [`RecordingAttnProcessor`][zerocon.attention.RecordingAttnProcessor] — the diffusers processor that does the recording.
- [`attention_layers`][zerocon.attention.attention_layers] — a model's attention layers and their kinds.
- [`take_batch_rows`][zerocon.attention.take_batch_rows] — pick batch rows of a ``(batch heads)`` tensor.
- [`AttentionAggregator`][zerocon.attention.AttentionAggregator], [`aggregate_cross_attention`][zerocon.attention.aggregate_cross_attention] — per-token maps averaged
  over layers, heads and steps (prompt-to-prompt style).

Records are keyed by layer name: the diffusers processor name without ``".processor"``.
"""

from zerocon.attention.aggregate import AttentionAggregator, aggregate_cross_attention
from zerocon.attention.flux_processor import (
    FluxAttentionRecorder,
    flux_image_probabilities,
    flux_image_to_text_probabilities,
    flux_query_key_value,
)
from zerocon.attention.injection import SelfAttentionInjection
from zerocon.attention.joint_processor import JointAttentionRecorder, image_to_text_probabilities
from zerocon.attention.layers import attention_layers, layer_name, processor_registry
from zerocon.attention.processor import AttentionSink, RecordingAttnProcessor
from zerocon.attention.records import AttentionRecords
from zerocon.attention.rows import BatchRows, normalize_batch_rows, take_batch_rows
from zerocon.attention.selector import LayerKind, LayerSelector
from zerocon.attention.store import AttentionStore

__all__ = [
    "AttentionAggregator",
    "AttentionRecords",
    "AttentionSink",
    "AttentionStore",
    "BatchRows",
    "FluxAttentionRecorder",
    "JointAttentionRecorder",
    "LayerKind",
    "LayerSelector",
    "RecordingAttnProcessor",
    "SelfAttentionInjection",
    "aggregate_cross_attention",
    "attention_layers",
    "flux_image_probabilities",
    "flux_image_to_text_probabilities",
    "flux_query_key_value",
    "image_to_text_probabilities",
    "layer_name",
    "normalize_batch_rows",
    "processor_registry",
    "take_batch_rows",
]

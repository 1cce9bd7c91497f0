namespace ModelOptPS.Engine.Verification;

/// <summary>
/// Stable ids of everything <see cref="QuantFormatVerifier"/> can find wrong. Runbooks and tests match on them, so an
/// id never changes meaning. Problems found while reading files reuse the reader's own ids
/// (<see cref="Errors.ErrorIds"/>: <c>SafetensorsTruncated</c>, <c>IndexShardMissing</c>, …).
/// </summary>
public static class VerificationIds
{
    // Whole checkpoint and configs.
    public const string CheckpointNotQuantized = nameof(CheckpointNotQuantized);
    public const string NothingQuantized = nameof(NothingQuantized);
    public const string QuantConfigMissing = nameof(QuantConfigMissing);
    public const string QuantConfigInvalid = nameof(QuantConfigInvalid);
    public const string UnsupportedQuantAlgo = nameof(UnsupportedQuantAlgo);
    public const string IgnoreDiffersFromExcludeModules = nameof(IgnoreDiffersFromExcludeModules);
    public const string ArchitecturesMissing = nameof(ArchitecturesMissing);

    // MIXED_PRECISION (quantized_layers): an entry that names no module on disk; a quantized Linear no entry names;
    // config.json's quantized_layers not hf_quant_config.json's; config_groups that do not partition them by config.
    public const string QuantizedLayerMatchesNothing = nameof(QuantizedLayerMatchesNothing);
    public const string QuantizedButNotListed = nameof(QuantizedButNotListed);
    public const string QuantizedLayersDiffer = nameof(QuantizedLayersDiffer);
    public const string ConfigGroupsInconsistent = nameof(ConfigGroupsInconsistent);

    // KV cache: an algorithm other than FP8 or null; config.json kv_cache_scheme not matching it; k/v scales without a
    // quantized KV cache; a scale not on an attention block's k_proj/v_proj; scales on some attention blocks only.
    public const string UnsupportedKvCacheQuantAlgo = nameof(UnsupportedKvCacheQuantAlgo);
    public const string KvCacheSchemeMismatch = nameof(KvCacheSchemeMismatch);
    public const string KvScalesWithoutKvCache = nameof(KvScalesWithoutKvCache);
    public const string KvScaleMisplaced = nameof(KvScaleMisplaced);
    public const string KvScalesPartial = nameof(KvScalesPartial);

    // Index and shards.
    public const string IndexMissing = nameof(IndexMissing);
    public const string IndexTensorMissing = nameof(IndexTensorMissing);
    public const string IndexWrongShard = nameof(IndexWrongShard);
    public const string TensorNotInIndex = nameof(TensorNotInIndex);
    public const string ShardNotInIndex = nameof(ShardNotInIndex);
    public const string ShardUnreadable = nameof(ShardUnreadable);
    public const string ShardLayout = nameof(ShardLayout);
    public const string IndexTotalSize = nameof(IndexTotalSize);
    public const string TensorUnreadable = nameof(TensorUnreadable);

    // Exclusion lists.
    public const string ExcludeMatchesNothing = nameof(ExcludeMatchesNothing);
    public const string ExcludedButQuantized = nameof(ExcludedButQuantized);
    public const string UnlistedUnquantizedLinear = nameof(UnlistedUnquantizedLinear);

    // One module's tensors.
    public const string NotQuantized = nameof(NotQuantized);
    public const string MustNotBeQuantized = nameof(MustNotBeQuantized);
    public const string FusedExpertsNotSplit = nameof(FusedExpertsNotSplit);
    public const string MissingPackedWeight = nameof(MissingPackedWeight);
    public const string MissingWeightScale = nameof(MissingWeightScale);
    public const string MissingWeightScale2 = nameof(MissingWeightScale2);
    public const string MissingInputScale = nameof(MissingInputScale);
    public const string UnexpectedInputScale = nameof(UnexpectedInputScale);
    public const string UnexpectedTensor = nameof(UnexpectedTensor);
    public const string WrongDType = nameof(WrongDType);
    public const string WrongShape = nameof(WrongShape);
    public const string InvalidScale = nameof(InvalidScale);
    public const string NaNBlockScale = nameof(NaNBlockScale);
    public const string InvalidBlockScale = nameof(InvalidBlockScale);

    // A module quantized in another format than the config declares for it (FP8 tensors where NVFP4 is declared, or
    // the reverse); an FP8 weight holding NaN codes (0x7F/0xFF).
    public const string WrongQuantFormat = nameof(WrongQuantFormat);
    public const string NaNFp8Weight = nameof(NaNFp8Weight);

    // Merged layers (vLLM packed_modules_mapping: qkv_proj, gate_up_proj, in_proj_qkvz, in_proj_ba, experts w13):
    // shards in different precisions; shards with different weight_scale_2 / weight_global_scale; with different
    // input_scale / input_global_scale.
    public const string MergedLayerMixedPrecision = nameof(MergedLayerMixedPrecision);
    public const string MergedLayerScaleMismatch = nameof(MergedLayerScaleMismatch);
    public const string MergedLayerInputScaleMismatch = nameof(MergedLayerInputScaleMismatch);

    // Scales and precision that all experts of one MoE layer share.
    public const string ExpertInputScaleMismatch = nameof(ExpertInputScaleMismatch);
    public const string PartiallyQuantizedExperts = nameof(PartiallyQuantizedExperts);

    // Against the source checkpoint (-Reference).
    public const string TensorModified = nameof(TensorModified);
    public const string TensorMissing = nameof(TensorMissing);
    public const string TensorNotInSource = nameof(TensorNotInSource);
    public const string ShapeMismatch = nameof(ShapeMismatch);
    public const string QuantizationErrorOutOfBound = nameof(QuantizationErrorOutOfBound);
    public const string NibblesSwapped = nameof(NibblesSwapped);
    public const string BlockScalesTransposed = nameof(BlockScalesTransposed);
    public const string WeightsOfOtherModule = nameof(WeightsOfOtherModule);
    public const string WeightScale2Mismatch = nameof(WeightScale2Mismatch);
    public const string Fp8WeightScaleMismatch = nameof(Fp8WeightScaleMismatch);
    public const string ConfigChanged = nameof(ConfigChanged);
    public const string SourceFileMissing = nameof(SourceFileMissing);
    public const string SourceFileModified = nameof(SourceFileModified);
}

# Help for Test-QuantFormat; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Checks a folder is a loadable quantized checkpoint that encodes its source.'

    Description  = @'
Test-QuantFormat checks a ModelOpt or compressed-tensors NVFP4 checkpoint, or a ModelOpt FP8 or MIXED_PRECISION one
with its FP8 KV cache, against the contract the inference engines rely on, independently of how it was written (it
shares no code with Export-Nvfp4's writer):

- the config files: quantization_config and hf_quant_config.json, quant_algo, a non-null architectures; for
  MIXED_PRECISION the same quantized_layers in both files, config_groups that partition them, and every entry naming a
  module on disk (an experts container covers its per-expert Linears); kv_cache_quant_algo FP8 or null, with a
  matching kv_cache_scheme;
- the index and shards: every index entry present, every tensor indexed, well-formed shards;
- every module: NVFP4 tensors with the right dtype and shape, finite positive scales, no NaN block scales, an
  input_scale for W4A4; FP8 per-tensor tensors (weight F8_E4M3 [out, in], 0-d F32 weight_scale and input_scale, no
  weight_scale_2); each in the format the config declares for it, and no module the config declares quantized still
  stored in bf16 (the silent failure this project exists to stop) - nor a checkpoint with nothing quantized at all;
- the KV cache scales: k_proj.k_scale and v_proj.v_scale (0-d F32, finite, positive) on every attention block or on
  none (cast mode), and none without kv_cache_quant_algo;
- the layers engines merge, per family as vLLM's packed_modules_mapping defines them (qkv_proj: q/k/v; gate_up_proj:
  gate/up of an MLP or shared expert; each expert's w13: gate/up, Mixtral w1/w3; Qwen3.5/3.6 in_proj_qkvz:
  in_proj_qkv + in_proj_z; in_proj_ba: in_proj_b + in_proj_a): every shard in the same precision, with bit-identical
  weight_scale_2 and input_scale when NVFP4 (compressed-tensors: weight_global_scale, input_global_scale; FP8 shards
  keep their own scales, which vLLM requantizes to the max); and all experts of a layer quantized alike, with
  identical input scales;
- the exclusion list in both directions, matched the way vLLM, SGLang and TensorRT-LLM match it: no entry that matches
  nothing, no unquantized Linear left unlisted (MIXED_PRECISION: no quantized Linear missing from quantized_layers).

With -Reference (the source checkpoint) it also compares every unquantized tensor with the source byte for byte,
dequantizes every NVFP4 and FP8 weight and checks it against the format's error bound - which names swapped nibbles,
transposed block scales, swapped gate/up halves and experts out of order - checks each FP8 weight_scale against the
source's amax/448, and reports each module's relative RMS error and SQNR.

It writes one object per check (Status Pass, Warn or Fail, with the error id and reason), then a summary report; with
-Quiet only $true or $false. A failing checkpoint is a result, not an error: only a missing folder or an unreadable
reference writes an ErrorRecord. An Export-Nvfp4 result piped in supplies both -Path and -Reference.
'@

    Parameters   = @{
        Path      = 'The checkpoint folder to check. Accepts strings, DirectoryInfo objects and Export-Nvfp4 results from the pipeline.'
        Reference = @'
The source checkpoint the folder was exported from. Enables the byte-for-byte comparison of unquantized tensors, the
error-bound check of every NVFP4 and FP8 weight, and the error statistics. An Export-Nvfp4 result's SourcePath binds here.
'@
        Quiet     = 'Return only $true (no check failed) or $false, for runbooks and Pester assertions.'
    }

    Inputs       = @{
        'System.String' = 'A checkpoint folder path, or an object with a Path (or FullName) property, such as an Export-Nvfp4 result.'
    }

    Outputs      = @{
        'ModelOptPS.Engine.Verification.ModuleCheck'        = 'One per module and per checkpoint-level check: Name, Scope, Expected, Found, Status, ErrorId, Reason; with -Reference also RelativeRmsError and SqnrDb.'
        'ModelOptPS.Engine.Verification.VerificationReport' = 'The summary: Passed, Format, QuantAlgo, KvCacheQuantAlgo, counts, Failures, error statistics and WorstModule.'
        'System.Boolean'                                    = 'With -Quiet: $true when no check failed.'
    }

    Examples     = @(
        @{
            Title   = 'Verify an export in a runbook'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 ./out-check
if (-not (Test-QuantFormat ./out-check -Reference ./ckpt -Quiet)) { throw 'The export is not a valid NVFP4 checkpoint.' }
'@
            Remarks = 'Exports weight-only NVFP4, then fails the runbook unless every check passes.'
        }
        @{
            Title   = 'See what failed and why'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 ./out-report |
    Test-QuantFormat | Where-Object Status -NE 'Pass' | Format-Table Name, Status, ErrorId, Reason
'@
            Remarks = 'The export result pipes in as both -Path and -Reference; the table lists any warnings or failures with their reasons.'
        }
        @{
            Title   = 'Quality per module'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 ./out-sqnr | Out-Null
Test-QuantFormat ./out-sqnr -Reference ./ckpt | Where-Object SqnrDb |
    Sort-Object SqnrDb | Select-Object -First 5 Name, SqnrDb, RelativeRmsError
'@
            Remarks = 'Lists the five quantized modules with the lowest signal-to-quantization-noise ratio.'
        }
    )

    Notes        = @'
Check error ids include CheckpointNotQuantized, NothingQuantized, NotQuantized, MissingWeightScale2, MissingInputScale,
InvalidScale, NaNBlockScale, MergedLayerMixedPrecision, MergedLayerScaleMismatch, MergedLayerInputScaleMismatch,
ExpertInputScaleMismatch, PartiallyQuantizedExperts, ExcludeMatchesNothing, UnlistedUnquantizedLinear,
IndexTensorMissing, TensorNotInIndex, TensorModified, NibblesSwapped, BlockScalesTransposed, WeightsOfOtherModule,
QuantizationErrorOutOfBound, WrongQuantFormat, NaNFp8Weight, Fp8WeightScaleMismatch, QuantizedLayerMatchesNothing,
QuantizedButNotListed, QuantizedLayersDiffer, ConfigGroupsInconsistent, UnsupportedKvCacheQuantAlgo,
KvCacheSchemeMismatch, KvScalesWithoutKvCache, KvScaleMisplaced and KvScalesPartial (see the ErrorId of each check). The cmdlet itself writes
CheckpointFolderNotFound for a missing folder, and the reader's ids (e.g. SafetensorsTruncated) for an unreadable
reference. Ctrl+C stops the pipeline. Any step may also write the shared ids AccessDenied, FileNotFound, FileSystemError (non-terminating) and
NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.
'@

    RelatedLinks = @('Export-Nvfp4', 'Import-HFModel', 'about_ModelOptPS')
}

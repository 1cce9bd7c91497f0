# Help for Measure-QuantQuality; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Measures what an NVFP4, FP8 or FP8-KV form costs on held-out text.'

    Description  = @'
Measure-QuantQuality runs a model and its NVFP4 form on the same held-out text and reports:

- the perplexity of each, and the relative increase;
- the mean KL divergence, in nats, of the quantized model's next-token distributions from the reference's;
- top-1 agreement: how often both rank the same next token first.

The NVFP4 form is computed the way an NVFP4 inference engine computes it: dequantized NVFP4 weights (the exact bytes
Export-Nvfp4 writes), and for W4A4 activations quantized per token and 16-element block against the calibrated input
scale; W4A16 keeps activations unquantized. FP8 modules (MIXED_PRECISION recipes) compute with their dequantized FP8
weights and activations quantized per tensor against their input_scale, as vLLM does; an FP8 KV cache quantizes every
attention layer's keys (after RoPE) and values with its k_scale/v_scale, or 1.0 where none is written (-KvCache
Fp8Cast).

Give it either a model from Set-QuantConfig (and Invoke-Calibration for W4A4), to measure before exporting, or an
exported folder with -Path and its source with -Reference: then the weights and input scales are read back from the
files, which also proves the export decodes to a working model. An Export-Nvfp4 result pipes in as both.

The text is the built-in corpus's held-out split (which calibration never reads) unless -Dataset names a file. The
same inputs and seed always give the same numbers.
'@

    Parameters   = @{
        InputObject    = 'A model with a plan from Set-QuantConfig (and statistics from Invoke-Calibration for W4A4 plans).'
        Path           = 'An exported NVFP4 checkpoint folder, read back from disk.'
        Reference      = 'The source checkpoint the export was made from (an Export-Nvfp4 result''s SourcePath binds here).'
        Dataset        = 'An evaluation text file: .jsonl (text or chat messages), .parquet (the -Column column) or plain text. The default is the built-in corpus''s held-out split.'
        Column         = 'The JSONL field or Parquet column that holds the text. The default is text.'
        NumSamples     = 'How many evaluation sequences to run. The default is 16.'
        SequenceLength = 'Tokens per evaluation sequence. The default is 256.'
        Seed           = 'Seed of the document order.'
        Device         = 'The libtorch device: cpu (the default) or cuda.'
    }

    Inputs       = @{
        'ModelOptPS.Engine.Model.HFModel' = 'A planned (and, for W4A4, calibrated) model.'
    }

    Outputs      = @{
        'ModelOptPS.Engine.Quality.QualityReport' = @'
Model, Quantized (where the quantized form came from), Scheme (the formats in ModelOpt's terms: NVFP4, W4A16_NVFP4,
FP8, or MIXED_PRECISION (FP8, W4A16_NVFP4), with + FP8 KV for an FP8 KV cache), Data, Sequences, Positions,
ReferencePerplexity, QuantizedPerplexity, PerplexityIncrease, MeanKl, Top1Agreement and Duration.
'@
    }

    Examples     = @(
        @{
            Title   = 'Measure before exporting'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig | Invoke-Calibration -NumSamples 16 |
    Measure-QuantQuality -NumSamples 4
'@
            Remarks = 'Calibrates for NVFP4 W4A4 and shows perplexity before and after, KL divergence and top-1 agreement.'
        }
        @{
            Title   = 'Measure an exported checkpoint read back from disk'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig -Preset W4A16_NVFP4 | Export-Nvfp4 ./out-q |
    Measure-QuantQuality -NumSamples 4
'@
            Remarks = 'The export result pipes in as -Path and -Reference: the NVFP4 weights are dequantized from the files.'
        }
        @{
            Title   = 'Compare presets'
            Code    = @'
foreach ($preset in 'W4A16_NVFP4', 'NVFP4_MLP_ONLY') {
    $model = Import-HFModel ./ckpt | Set-QuantConfig -Preset $preset
    if ($model.Plan.NeedsCalibration) { $model = $model | Invoke-Calibration -NumSamples 8 }
    $model | Measure-QuantQuality -NumSamples 4 | Select-Object Scheme, QuantizedPerplexity, MeanKl, Top1Agreement
}
'@
            Remarks = 'A small table of what each recipe costs, to choose between them.'
        }
    )

    Notes        = @'
Error ids: NoQuantPlan, NotAnNvfp4Checkpoint, NotEnoughEvaluationData, TokenizerNotFound, DatasetNotFound,
DatasetInvalid, CheckpointFolderNotFound, InputAmaxMissing, WeightCalibrationMissing (a LocalHessian or Gptq plan not calibrated for it), ForwardNotSupported, InputSharingUnknown, DeviceNotAvailable, NonFiniteWeight,
TooManyTokens, TensorTooLarge (a weight larger than one array), CheckpointAlreadyQuantized (a quantized -Reference).
Any step may also write the shared ids AccessDenied, FileNotFound, FileSystemError (non-terminating) and
NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.
'@

    RelatedLinks = @('Invoke-Calibration', 'Export-Nvfp4', 'Test-QuantFormat', 'about_ModelOptPS')
}

# Help for Invoke-Calibration; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Measures activation ranges on calibration text for W4A4 export.'

    Description  = @'
NVFP4 W4A4 needs, for every quantized module, the largest |activation| its input sees on representative text; the
export writes input_scale = amax / 2688 from it. Invoke-Calibration gets these numbers the way ModelOpt's max
calibration does: it runs the unquantized model - in TorchSharp (libtorch), on the CPU or a CUDA device - over
calibration text and records, for the input of every Linear, the running max of |x| over all tokens, and for NVFP4
inputs a histogram of the amaxes of 16-element blocks, from which -ActivationCalibrator Headroom (ModelOpt's
nvfp4_act_headroom) computes input scales that leave headroom above the calibrated range.

The model is run layer by layer from the memory-mapped checkpoint: only the decoder layer being run is in memory, and
the activations of all calibration sequences pass from layer to layer, so a model larger than RAM calibrates. Experts
run grouped by expert. For Mixture-of-Experts models it also counts the tokens routed to each expert; experts that saw
none get their layer's shared input scale at export, and are reported. -AllExperts passes every token through every
expert for the statistics while only the routed outputs feed the next layer, so no expert goes uncalibrated.

Calibration text is the built-in corpus (about 560 KB of prose, dialogue and code, PSF-licensed; its held-out part is
never used) unless -Dataset names a .txt/.md file (one document), a .jsonl file (a text field, or chat messages rendered
like the model's chat template) or a .parquet file from a Hugging Face dataset (a text column). Documents are shuffled
with -Seed, tokenized with the checkpoint's tokenizer.json, joined with the end-of-text token and cut into -NumSamples
sequences of -SequenceLength tokens: the same inputs and seed give the same statistics.

The plan's weight algorithm (Set-QuantConfig -Algorithm) adds to the run: LocalHessian collects, in the same pass, the
16x16 diagonal blocks of XᵀX/N of every NVFP4 weight's input (per expert, over the tokens routed to it); Gptq then runs
ModelOpt's layerwise GPTQ over the same sequences (with the plan's perc_damp and block_size, and with the activation
scales just measured applied, as ModelOpt keeps input quantizers on) and keeps the quantized weights on the model
($model.WeightSolutions), which Export-Nvfp4 writes.

The model flows on with the statistics attached ($model.Statistics) and the run's report ($model.CalibrationReport, or
-ReportVariable): tokens seen, time taken, and per MoE layer the minimum, median and maximum tokens per expert and
the experts that saw none. A model without a plan is calibrated for NVFP4_DEFAULT, with a warning. Ctrl+C stops cleanly
and leaves the model as it was.

Calibration is data-parallel, so it can be spread over machines: -ShardIndex i -ShardCount n -StatisticsPath file
calibrates shard i of the same sample set a single run uses (the same data, -NumSamples, -SequenceLength and -Seed),
split into n contiguous ranges of whole batches of -BatchSize sequences, saves its statistics to the file and outputs
a small CalibrationShardInfo (path, shard, sequences, tokens, model and plan fingerprints) instead of the model, since
a model object does not survive a job or a remoting session. Merge-CalibrationStatistics adds the shards up into the
statistics of one run over all samples (max, histograms and token counts identical, Hessian sums equal up to float64
reassociation) for Export-Nvfp4 and Measure-QuantQuality. Without the shard parameters, -StatisticsPath saves the whole
run's statistics and the model flows on as usual. A GPTQ plan cannot be sharded (its layers depend on all samples in
order): -StatisticsPath refuses it. examples/Invoke-ShardedCalibration.ps1 is a runbook.
'@

    Parameters   = @{
        InputObject    = 'The model from Set-QuantConfig (or Import-HFModel: then NVFP4_DEFAULT is planned, with a warning).'
        Dataset        = @'
A calibration data file: .jsonl (a "text" field per line, or "messages" [{role, content}] rendered like the
checkpoint's chat template), .parquet (the column named by -Column), or any other file as one text document. Omit it to
use the built-in corpus.
'@
        Column         = 'The JSONL field or Parquet column that holds the text. The default is text.'
        NumSamples     = 'How many calibration sequences to run. The default, 64, keeps a CPU run short; ModelOpt uses 512 on a GPU.'
        SequenceLength = 'Tokens per calibration sequence. The default is 256.'
        BatchSize      = 'How many sequences go through a layer at once; bounds activation memory. The default is 16.'
        Seed           = 'Seed of the document order. The same data, model and seed always give the same statistics.'
        AllExperts     = @'
Also run every token through every expert to collect statistics (llm-compressor's moe_calibrate_all_experts); only the
routed experts' outputs feed the next layer, so the model computes exactly what it does without the switch.
'@
        ActivationCalibrator = @'
How the input scales of NVFP4 (W4A4) modules are computed from the statistics. Max (the default) is ModelOpt's max
calibration: the largest |x| seen. Headroom is ModelOpt's nvfp4_act_headroom: over a log2 histogram of the amaxes of
every 16-element block, amax = max(16384 x the 1st percentile, the 99.99th percentile), leaving room above the
calibrated range for larger activations (a lone outlier block is clipped rather than setting the scale). FP8 inputs
and the KV cache always use max. The statistics keep what both need, so
$model.Statistics.WithActivationCalibrator('Headroom') switches without calibrating again.
'@
        Device         = 'The libtorch device: cpu (the default) or cuda, which needs a CUDA build of libtorch installed by the user.'
        ComputeDType   = @'
The dtype the model runs in while calibrating. BFloat16 (the default) runs as transformers and ModelOpt do on a GPU:
bf16 weights and activations between Linears, bf16 matmuls accumulating in float32, and norms, softmax, router
probabilities and the DeltaNet recurrence in float32. Float32 widens the weights as they are read: one MoE layer's
experts take twice the memory and the matmuls about four times the CPU. On a 4 GB Qwen3.5-MoE, BFloat16 took 2.2x less
CPU time and 0.3 GB less peak memory; its amaxes were a median 0.5% from Float32's (one bf16 step is 0.4%) and the
sample model's measured quality was the same within noise. GPTQ's passes run in Float32 either way.
'@
        ReportVariable = 'The name of a variable (without $) that receives the calibration report object.'
        ShardIndex     = @'
Which shard of the sample set to calibrate, from 0 to -ShardCount minus 1. Needs -ShardCount and -StatisticsPath; the
cmdlet then writes the file and outputs a CalibrationShardInfo instead of the model.
'@
        ShardCount     = @'
How many shards the sample set is split into: contiguous ranges of whole batches (-BatchSize sequences), so each shard
runs exactly the batches a single run would. There must be at least as many batches as shards (TooFewBatchesForShards).
'@
        StatisticsPath = @'
The file to save the statistics to (a safetensors file, written atomically; an existing file is replaced), for
Merge-CalibrationStatistics. Mandatory with -ShardIndex; without it, the whole run's statistics are saved and the model
flows on.
'@
    }

    Inputs       = @{
        'ModelOptPS.Engine.Model.HFModel' = 'A model with a plan from Set-QuantConfig.'
    }

    Outputs      = @{
        'ModelOptPS.Engine.Model.HFModel' = 'The same model with Statistics and CalibrationReport attached, for Export-Nvfp4.'
        'ModelOptPS.Engine.Calibration.CalibrationShardInfo' = 'With -ShardIndex: what the shard wrote (Path, ShardIndex, ShardCount, Sequences, Tokens, fingerprints).'
    }

    Examples     = @(
        @{
            Title   = 'Calibrate on the built-in corpus and export'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig |
    Invoke-Calibration | Export-Nvfp4 ./out
'@
            Remarks = 'The default: 64 sequences of 256 tokens from the built-in corpus, then a W4A4 NVFP4 export to ./out.'
        }
        @{
            Title   = 'Look at expert coverage before exporting'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig |
    Invoke-Calibration -NumSamples 16 -SequenceLength 128 -ReportVariable report
$report.ExpertCoverage | Format-Table Experts, Min, Median, Max, Idle
'@
            Remarks = @'
Runs a short calibration and shows, per MoE layer, how many tokens each expert saw; idle experts would get the
layer's shared input scale.
'@
        }
        @{
            Title   = 'Calibrate on your own chat data, every expert seeing every token'
            Code    = @'
'{"messages": [{"role": "user", "content": "What is NVFP4?"}, {"role": "assistant", "content": "A 4-bit float format."}]}' |
    Set-Content ./chat.jsonl
Import-HFModel ./ckpt | Set-QuantConfig |
    Invoke-Calibration ./chat.jsonl -SequenceLength 16 -NumSamples 2 -AllExperts -Verbose
'@
            Remarks = 'Chat records are rendered like the model''s chat template; -AllExperts calibrates experts the router rarely picks.'
        }
        @{
            Title   = 'Calibrate in two shards, merge, export'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig
0..1 | ForEach-Object {
    $model | Invoke-Calibration -NumSamples 8 -SequenceLength 64 -BatchSize 4 -ShardIndex $_ -ShardCount 2 -StatisticsPath "./shards/$_.safetensors"
}
$model | Merge-CalibrationStatistics -Path ./shards/*.safetensors | Export-Nvfp4 ./out
'@
            Remarks = @'
Each shard could run on another machine (Start-Job, Invoke-Command -AsJob, a Kubernetes or Slurm job) with the same
model and parameters; only the statistics files travel. examples/Invoke-ShardedCalibration.ps1 does it with jobs.
'@
        }
    )

    Notes        = @'
Error ids: NoQuantPlan, TokenizerNotFound, TokenizerInvalid, DatasetNotFound, DatasetInvalid (with the line),
DatasetColumnNotFound, DatasetColumnNotText, NotEnoughCalibrationData, NonFiniteActivation (naming the layer and
module), ForwardNotSupported (an architecture the engine cannot run), DeviceNotAvailable, TorchNotAvailable,
TooManyTokens (-NumSamples x -SequenceLength more than one run holds), ChunkTooLarge (-BatchSize x -SequenceLength
too large for one layer's arrays), InvalidShard, TooFewBatchesForShards, GptqStatisticsNotMergeable (sharding or
saving statistics of a GPTQ plan); a JSONL line that is not an object, or a message whose role or content is not a
string, is DatasetInvalid with its line. Any step may also write the shared ids AccessDenied, FileNotFound, FileSystemError (non-terminating) and
NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.

Write-Progress shows the layer being run, the percentage and the time remaining; -Verbose tells the data, the settings
and the expert coverage per layer.
'@

    RelatedLinks = @('Set-QuantConfig', 'Export-Nvfp4', 'Get-QuantPlan', 'about_ModelOptPS')
}

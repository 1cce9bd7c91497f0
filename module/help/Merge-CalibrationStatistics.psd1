# Help for Merge-CalibrationStatistics; see _Template.psd1 for the format and build/New-ModuleHelp.ps1 for how it is checked.
@{
    Synopsis     = 'Merges calibration statistics files into the model''s statistics.'

    Description  = @'
Calibration over many samples is data-parallel: the running max of every input, the per-block amax histograms that
headroom reads, the tokens each expert saw and the Hessian sums that local Hessian reads all add up exactly over
disjoint sets of samples. Invoke-Calibration -ShardIndex i -ShardCount n -StatisticsPath file calibrates one shard of
a sample set and saves its statistics; Merge-CalibrationStatistics reads the files of all n shards, wherever they
were computed, and attaches to the model the statistics one run over all samples would have produced, with a
calibration report (tokens, expert coverage, the warnings of the whole set), so the model flows on to Export-Nvfp4 or
Measure-QuantQuality exactly as after Invoke-Calibration.

Before adding anything up it checks every file: calibrated on this model (a fingerprint of config.json and of every
tensor's name, dtype and shape), for this plan (a fingerprint of every quantizer's decision and format, the KV cache and
the weight algorithm), and from one sample split (the same data file by SHA-256, column, -NumSamples,
-SequenceLength, -Seed, -BatchSize, -AllExperts, activation calibrator and shard count); no shard twice and none
missing. One file (a whole run saved with -StatisticsPath, or an earlier merge saved with -OutputPath) is the import
case.

Max, histograms and token counts come out identical to a single run. Hessian sums are float64 sums of the same
per-batch float32 products, only added in a different order, so they agree to float64 rounding and the float32
blocks the search reads are in practice identical. Shards computed on different CPUs or with different thread counts
may round the per-batch products differently (oneDNN's GEMM blocking depends on both): the numbers then agree to
float32 rounding rather than bit for bit. GPTQ plans cannot be merged: each layer's Hessian depends on the previous
layers' GPTQ weights solved on all samples together.
'@

    Parameters   = @{
        InputObject    = 'The model from Set-QuantConfig, planned exactly as the model the shards were calibrated with.'
        Path           = @'
The statistics files to merge: every shard of one split (wildcards expand, e.g. ./shards/*.safetensors), or one file.
'@
        OutputPath     = 'Also save the merged statistics as one file (a whole-run statistics file, which this cmdlet reads back).'
        ReportVariable = 'The name of a variable (without $) that receives the merged calibration report.'
    }

    Inputs       = @{
        'ModelOptPS.Engine.Model.HFModel' = 'A model with a plan from Set-QuantConfig.'
    }

    Outputs      = @{
        'ModelOptPS.Engine.Model.HFModel' = 'The same model with the merged Statistics and CalibrationReport attached, for Export-Nvfp4.'
    }

    Examples     = @(
        @{
            Title   = 'Calibrate three shards, merge them, export'
            Code    = @'
$model = Import-HFModel ./ckpt | Set-QuantConfig
0..2 | ForEach-Object {
    $model | Invoke-Calibration -NumSamples 12 -SequenceLength 64 -BatchSize 4 -ShardIndex $_ -ShardCount 3 -StatisticsPath "./shards/$_.safetensors"
}
$model | Merge-CalibrationStatistics -Path ./shards/*.safetensors -ReportVariable report | Export-Nvfp4 ./out
$report
'@
            Remarks = @'
The shards could run anywhere the model and the data are; examples/Invoke-ShardedCalibration.ps1 runs them as
background jobs, and one line turns them into Invoke-Command -ComputerName ... -AsJob.
'@
        }
        @{
            Title   = 'Save a calibration once, reuse it later'
            Code    = @'
Import-HFModel ./ckpt | Set-QuantConfig | Invoke-Calibration -NumSamples 8 -SequenceLength 64 -StatisticsPath ./stats.safetensors | Out-Null
Import-HFModel ./ckpt | Set-QuantConfig | Merge-CalibrationStatistics ./stats.safetensors | Export-Nvfp4 ./out
'@
            Remarks = 'A whole run saved with -StatisticsPath is one shard of one; merging it imports the statistics without calibrating again.'
        }
    )

    Notes        = @'
Error ids (the file is the error's target): StatisticsFileNotFound, StatisticsFileInvalid (not a statistics file,
another format version, truncated or damaged), StatisticsModelMismatch, StatisticsPlanMismatch,
StatisticsSplitMismatch (naming the settings that differ), DuplicateStatisticsShard, MissingStatisticsShards (naming
them), GptqStatisticsNotMergeable, NoQuantPlan. Any step may also write the shared ids AccessDenied, FileNotFound,
FileSystemError (non-terminating) and NativeError, OutOfMemory, InternalError (terminating); see about_ModelOptPS.
'@

    RelatedLinks = @('Invoke-Calibration', 'Export-Nvfp4', 'Measure-QuantQuality', 'about_ModelOptPS')
}

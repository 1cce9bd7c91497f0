<#
.SYNOPSIS
    Runbook gate for an NVFP4 checkpoint: prove an export is one vLLM, SGLang and TensorRT-LLM load, and that it
    still encodes its source, before it ships.
.DESCRIPTION
    A Pester 5 container. Give it the exported folder and, for the full check, the source checkpoint it came from:
    tensors are then compared byte for byte (unquantized) and against NVFP4's error bound (quantized), and every
    quantized module must keep at least -MinSqnrDb of signal-to-quantization-noise ratio.
.EXAMPLE
    $data = @{ Path = '/models/Qwen3-30B-A3B-NVFP4'; Reference = '/models/Qwen3-30B-A3B' }
    Invoke-Pester -Container (New-PesterContainer -Path ./examples/Verify-Export.Tests.ps1 -Data $data) -Output Detailed
.EXAMPLE
    # The same gate without Pester, e.g. in a deployment script:
    if (-not (Test-QuantFormat /models/Qwen3-30B-A3B-NVFP4 -Reference /models/Qwen3-30B-A3B -Quiet)) { throw 'not a valid NVFP4 export' }
#>
param(
    # The exported NVFP4 checkpoint folder.
    [Parameter(Mandatory)] [string] $Path,

    # The source checkpoint it was exported from; leave empty to check the contract only.
    [string] $Reference,

    # The lowest acceptable per-module SQNR (NVFP4 on well-behaved weights gives about 20 dB).
    [double] $MinSqnrDb = 15,

    # Where to import ModelOptPS from (the installed module by default).
    [string] $Module = 'ModelOptPS'
)

BeforeAll {
    Import-Module $Module
    # One pass over the checkpoint; every test below reads its results.
    $script:checks = @(Test-QuantFormat -Path $Path -Reference $Reference)
    $script:report = $checks | Where-Object { $_ -is [ModelOptPS.Engine.Verification.VerificationReport] }
    $script:modules = @($checks | Where-Object Scope -EQ 'Module')
    function Format-Failures($Items) { ($Items | ForEach-Object { "$($_.Name) [$($_.ErrorId)]: $($_.Reason)" }) -join "`n" }
}

Describe 'NVFP4 export <Path>' {
    It 'declares NVFP4 in a format the engines read' {
        $report.Format | Should -BeIn 'ModelOpt', 'CompressedTensors'
        $report.QuantAlgo | Should -BeIn 'NVFP4', 'W4A16_NVFP4'
    }

    It 'has valid config files, index and shards' {
        $broken = $checks | Where-Object { $_.Scope -in 'Checkpoint', 'Config', 'Index', 'Shard', 'File' -and $_.Status -eq 'Fail' }
        $broken | Should -BeNullOrEmpty -Because (Format-Failures $broken)
    }

    It 'quantizes modules, and every module is as its config declares' {
        $report.QuantizedModules | Should -BeGreaterThan 0
        $broken = $modules | Where-Object Status -EQ 'Fail'
        $broken | Should -BeNullOrEmpty -Because (Format-Failures $broken)
    }

    It 'lists only modules that exist in its exclusion list' {
        $broken = $checks | Where-Object { $_.Scope -eq 'Exclusion' -and $_.Status -eq 'Fail' }
        $broken | Should -BeNullOrEmpty -Because (Format-Failures $broken)
    }

    It 'keeps lm_head and the MoE routers unquantized' {
        $kept = $modules | Where-Object { $_.Name -match '(^|\.)lm_head$|\.mlp\.gate$|block_sparse_moe\.gate$' }
        $kept | Where-Object Found -Like 'NVFP4*' | Should -BeNullOrEmpty
    }

    It 'keeps every NVFP4 module above <MinSqnrDb> dB SQNR against the source' -Skip:(-not $Reference) {
        $noisy = $modules | Where-Object { $null -ne $_.SqnrDb -and $_.SqnrDb -lt $MinSqnrDb }
        $noisy | Should -BeNullOrEmpty -Because (($noisy | ForEach-Object { '{0}: {1:0.0} dB' -f $_.Name, $_.SqnrDb }) -join "`n")
    }

    It 'passes as a whole' {
        $report.Passed | Should -BeTrue -Because $report.Summary
    }
}

@{
    RootModule           = 'ModelOptPS.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = 'b4f5c0d2-6a1e-4e8f-9a57-2f1c3d4e5a60'
    Author               = 'ModelOptPS engineers'
    CompanyName          = 'ModelOptPS'
    Copyright            = '(c) ModelOptPS engineers. MIT licence.'
    Description          = 'Quantizes Hugging Face LLM checkpoints (dense and Mixture-of-Experts) to NVFP4 checkpoints that vLLM, SGLang and TensorRT-LLM load, bit-identical with NVIDIA ModelOpt, and verifies them.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('ModelOptPS.Format.ps1xml')
    TypesToProcess       = @('ModelOptPS.Types.ps1xml')
    CmdletsToExport      = @(
        'Import-HFModel'
        'Set-QuantConfig'
        'Get-QuantPlan'
        'Invoke-Calibration'
        'Merge-CalibrationStatistics'
        'Export-Nvfp4'
        'Test-QuantFormat'
        'Measure-QuantQuality'
        'Get-ModelOptEnvironment'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('NVFP4', 'quantization', 'ModelOpt', 'LLM', 'safetensors', 'MoE')
            LicenseUri = 'https://opensource.org/licenses/MIT'
        }
    }
}

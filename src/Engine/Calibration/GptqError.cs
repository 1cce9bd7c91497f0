using static TorchSharp.torch;

namespace ModelOptPS.Engine.Calibration;

/// <summary>ModelOpt's <c>_print_mse_error</c>: <c>mean((Ŵ−W)H∘(Ŵ−W)) / (mean(WH∘W) + 1e-6)</c>, fp32 as there.</summary>
internal static class GptqError
{
    public static double Relative(float[] original, float[] quantized, float[] hessian, int cols)
    {
        using var scope = NewDisposeScope();
        int rows = original.Length / cols;
        Tensor w = tensor(original, [rows, cols], ScalarType.Float32);
        Tensor delta = tensor(quantized, [rows, cols], ScalarType.Float32).sub_(w);
        Tensor h = tensor(hessian, [cols, cols], ScalarType.Float32);
        double error = delta.mm(h).mul_(delta).mean().item<float>();
        double reference = w.mm(h).mul_(w).mean().item<float>();
        return error / (reference + 1e-6);
    }
}

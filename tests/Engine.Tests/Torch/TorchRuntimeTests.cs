using ModelOptPS.Engine.Torch;

namespace ModelOptPS.Engine.Tests.Torch;

public sealed class TorchRuntimeTests
{
    [Fact]
    public void EnsureLoaded_LoadsLibTorchInTheTestHost()
    {
        TorchRuntime.EnsureLoaded();
        TorchRuntime.EnsureLoaded(); // Idempotent.

        TorchRuntimeInfo info = TorchRuntime.GetInfo();
        Assert.True(info.IsLoaded);
        Assert.Equal("0.107.0", info.TorchSharpVersion);
        Assert.NotNull(info.LibTorchVersion);
        Assert.InRange(info.Threads ?? 0, 1, Environment.ProcessorCount);
        Assert.NotNull(info.NativeDirectory);
    }

    [Fact]
    public void EnsureLoaded_IsSafeFromManyThreadsAtOnce()
    {
        Parallel.For(0, 8, _ => TorchRuntime.EnsureLoaded());
        Assert.True(TorchRuntime.IsLoaded);
    }

    [Theory]
    [InlineData(1.0f, 0x38)]
    [InlineData(448f, 0x7E)]
    [InlineData(-448f, 0xFE)]
    [InlineData(0.5f, 0x30)]
    public void Float32ToE4M3Fn_GivesTheExpectedByte(float value, byte expected)
    {
        byte[] bytes = TorchFloat8.ToE4M3FnBytes([value]);
        Assert.Equal([expected], bytes);
    }

    [Fact]
    public void SelfTest_Passes()
    {
        TimeSpan elapsed = TorchRuntime.RunSelfTest();
        Assert.True(elapsed >= TimeSpan.Zero);
    }

    [Fact]
    public void TorchSharpFallback_NeverRan()
    {
        TorchRuntime.EnsureLoaded();
        string torchSharpDirectory = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location)!;
        // TorchSharp copies the natives into cpu/ beside itself only when its regular load failed.
        Assert.False(Directory.Exists(Path.Combine(torchSharpDirectory, "cpu")));
    }
}

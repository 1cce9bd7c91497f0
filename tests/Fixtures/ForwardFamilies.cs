namespace ModelOptPS.Fixtures;

/// <summary>Every family the engine runs forward passes of: the generator's, and the dense Qwen3.5 derived from its MoE recipe.</summary>
public static class ForwardFamilies
{
    public static IReadOnlyList<string> Names { get; } = [.. TinyCheckpoints.Families, DenseQwen3_5.Family];

    /// <summary>Writes a family's tiny checkpoint into <paramref name="folder"/> and returns the folder.</summary>
    public static string Write(string family, string folder) =>
        family == DenseQwen3_5.Family ? DenseQwen3_5.Recipe().Write(folder) : TinyCheckpoints.Write(family, folder);
}

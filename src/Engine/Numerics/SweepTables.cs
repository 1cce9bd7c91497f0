namespace ModelOptPS.Engine.Numerics;

/// <summary>
/// Per-call constants of the FP8 scale sweep for one <c>weight_scale_2</c>, padded to
/// <see cref="Fp8ScaleCandidates.PaddedCount"/> candidates (the padding repeats 448).
/// </summary>
internal sealed class SweepTables
{
    public SweepTables(float weightScale2)
    {
        for (int k = 0; k < MantissaDivisors.Length; k++)
        {
            MantissaDivisors[k] = Fp8ScaleCandidates.Mantissa(k) * weightScale2;
        }

        PowerOfTwoExact = true;
        for (int c = 0; c < Fp8ScaleCandidates.PaddedCount; c++)
        {
            Divisors[c] = Fp8ScaleCandidates.Value(c) * weightScale2;
            MantissaIndices[c] = Fp8ScaleCandidates.MantissaIndex(c);
            InversePowersOfTwo[c] = Fp8ScaleCandidates.InversePowerOfTwo(c);

            // d must be exactly 2^E·fl32(M·wsf2) (scaling in double is exact) and that divisor's quotient scaling must
            // stay exact, which a normal (not subnormal) divisor guarantees.
            double scaled = Math.ScaleB((double)MantissaDivisors[MantissaIndices[c]], -MathF.ILogB(InversePowersOfTwo[c]));
            PowerOfTwoExact &= Divisors[c] == scaled && float.IsNormal(Divisors[c]) && float.IsNormal(MantissaDivisors[MantissaIndices[c]]);
        }
    }

    /// <summary><c>fl32(v·wsf2)</c> per candidate: the divisor of spec step 4.</summary>
    public float[] Divisors { get; } = new float[Fp8ScaleCandidates.PaddedCount];

    /// <summary><c>fl32(M_k·wsf2)</c> for the 8 mantissas.</summary>
    public float[] MantissaDivisors { get; } = new float[8];

    /// <summary>The mantissa index of each candidate.</summary>
    public int[] MantissaIndices { get; } = new int[Fp8ScaleCandidates.PaddedCount];

    /// <summary><c>2^-E</c> of each candidate.</summary>
    public float[] InversePowersOfTwo { get; } = new float[Fp8ScaleCandidates.PaddedCount];

    /// <summary>Whether the 8-division shortcut is exact for this <c>weight_scale_2</c>.</summary>
    public bool PowerOfTwoExact { get; }
}

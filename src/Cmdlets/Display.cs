using System.Globalization;

namespace ModelOptPS.Cmdlets;

/// <summary>Human-readable numbers for the format views (ModelOptPS.Format.ps1xml calls these).</summary>
public static class Display
{
    private static readonly string[] ByteUnits = ["B", "KB", "MB", "GB", "TB"];

    /// <summary>Bytes in decimal units (as Hugging Face and disk vendors count them), e.g. <c>1.23 GB</c>.</summary>
    public static string Bytes(long bytes)
    {
        double value = bytes;
        int unit = 0;
        while (Math.Abs(value) >= 1000 && unit < ByteUnits.Length - 1)
        {
            value /= 1000;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString("0.##", CultureInfo.InvariantCulture) + " " + ByteUnits[unit];
    }

    /// <summary>Parameter counts as model cards write them, e.g. <c>30.5B</c>, <c>412.3K</c>.</summary>
    public static string Count(long count) => count switch
    {
        >= 1_000_000_000 => (count / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "B",
        >= 1_000_000 => (count / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (count / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "K",
        _ => count.ToString(CultureInfo.InvariantCulture),
    };
}

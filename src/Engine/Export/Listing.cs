namespace ModelOptPS.Engine.Export;

/// <summary>A short, readable list of file names for an error message.</summary>
internal static class Listing
{
    private const int Shown = 8;

    public static string Of(IEnumerable<string> names)
    {
        var all = names.Order(StringComparer.Ordinal).ToList();
        string shown = string.Join(", ", all.Take(Shown).Select(n => $"'{n}'"));
        return all.Count > Shown ? $"{shown} and {all.Count - Shown} more" : shown;
    }
}

using System.Globalization;

namespace ModelOptPS.Engine.Verification;

/// <summary>Small wording helpers so every reason reads the same way.</summary>
internal static class Text
{
    private const int ListedItems = 4;

    /// <summary><c>1 tensor</c>, <c>3 tensors</c>; irregular plurals given.</summary>
    public static string Count(int n, string noun, string? plural = null) => $"{n} {(n == 1 ? noun : plural ?? noun + "s")}";

    /// <summary>The first few items, then how many more: <c>'a', 'b', 'c', 'd' and 5 more</c>.</summary>
    public static string List(IReadOnlyCollection<string> items, bool quote = true)
    {
        var shown = items.Take(ListedItems).Select(i => quote ? $"'{i}'" : i);
        string text = string.Join(", ", shown);
        return items.Count > ListedItems ? $"{text} and {items.Count - ListedItems} more" : text;
    }

    public static string Shape(IReadOnlyList<long> shape) => Safetensors.TensorInfo.FormatShape(shape);

    /// <summary>A float as round-trip text plus its bits, so two values that print alike can still be told apart.</summary>
    public static string Scale(float value) =>
        $"{value.ToString("R", CultureInfo.InvariantCulture)} (0x{BitConverter.SingleToUInt32Bits(value):X8})";

    public static string Number(double value) => value.ToString("G6", CultureInfo.InvariantCulture);
}

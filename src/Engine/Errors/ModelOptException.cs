namespace ModelOptPS.Engine.Errors;

/// <summary>What went wrong, in the terms a PowerShell ErrorCategory needs; the cmdlet layer maps it.</summary>
public enum ErrorKind
{
    ObjectNotFound,
    InvalidData,
    InvalidArgument,
    InvalidOperation,
    ResourceExists,
    NotImplemented,
    WriteError,
    ReadError,
    OperationStopped,
}

/// <summary>
/// Every failure the engine reports to a user: a stable error id (tests and runbooks match on it),
/// a category, and the file it concerns. Messages say what is wrong and, where it helps, what to do.
/// </summary>
public class ModelOptException : Exception
{
    public ModelOptException(string errorId, ErrorKind kind, string message, string? path = null, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
        Path = path;
    }

    /// <summary>Stable identifier, e.g. <c>SafetensorsHeaderTooLong</c>.</summary>
    public string ErrorId { get; }

    public ErrorKind Kind { get; }

    /// <summary>The file or folder the error is about, when there is one.</summary>
    public string? Path { get; }
}

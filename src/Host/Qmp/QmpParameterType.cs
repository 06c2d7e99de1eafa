namespace MiniVmm.Host.Qmp;

/// <summary>The JSON type a QMP command parameter takes.</summary>
public enum QmpParameterType
{
    /// <summary>A JSON string.</summary>
    String,

    /// <summary>A JSON number without fraction or exponent.</summary>
    Integer,

    /// <summary>Any JSON number.</summary>
    Number,

    /// <summary><c>true</c> or <c>false</c>.</summary>
    Boolean,

    /// <summary>A JSON object.</summary>
    Object,

    /// <summary>A JSON array.</summary>
    Array,

    /// <summary>Any JSON value.</summary>
    Any,
}

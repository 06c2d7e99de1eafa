namespace MiniVmm.Migration.Control;

/// <summary>A <c>migrate</c> or <c>migrate-incoming</c> that cannot start; the message is QEMU's.</summary>
public sealed class MigrationBlockedException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

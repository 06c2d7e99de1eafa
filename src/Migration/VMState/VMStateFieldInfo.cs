namespace MiniVmm.Migration.VMState;

/// <summary>Public description of one field of a <see cref="VMStateDescription"/>.</summary>
/// <param name="Name">The field's name (not made unique).</param>
/// <param name="TypeName">The type name the device description (vmdesc) JSON shows, e.g. "uint32", "buffer", "struct".</param>
/// <param name="VersionId">The first description version that contains the field (QEMU's field version_id).</param>
/// <param name="HasExistsPredicate">True when a predicate, not the version, decides whether the field is in the stream.</param>
public sealed record VMStateFieldInfo(string Name, string TypeName, int VersionId, bool HasExistsPredicate);

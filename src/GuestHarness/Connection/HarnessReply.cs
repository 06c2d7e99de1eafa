using MiniVmm.GuestHarness.Protocol;

namespace MiniVmm.GuestHarness.Connection;

/// <summary>A harness's reply to one request: the request it answers and its payload.</summary>
/// <param name="Request">The request number the reply carries.</param>
/// <param name="Payload">The payload: a status, a feature set or state bytes.</param>
public sealed record HarnessReply(HarnessRequest Request, byte[] Payload);

/**
 * Server reflection (grpc.reflection.v1 and v1alpha) from the descriptors buf compiled
 * (@skein/proto), listing only the services given. @grpc/reflection does the work, with one
 * answer corrected: asked for the extension numbers of a message that has no extensions, it says
 * NOT_FOUND, where Go's reflection (the reference grpcurl is built against) answers an empty list.
 * grpcurl before 1.8.8 treats that NOT_FOUND as fatal for the type, and then prints every error
 * detail (google.rpc.ErrorInfo, LeaderHint) as raw base64. A name that is not a message still
 * gets NOT_FOUND, as from Go.
 */
import type * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { ReflectionV1Implementation } from '@grpc/reflection/build/src/implementations/reflection-v1.js';
import { ReflectionV1AlphaImplementation } from '@grpc/reflection/build/src/implementations/reflection-v1alpha.js';
import { fileDescriptorProtos, messageTypeNames } from '@skein/proto';

type ExtensionNumbers = ReturnType<ReflectionV1Implementation['allExtensionNumbersOfType']>;

/** The library's answer, or an empty list for a known message it has no extension entry for. */
function extensionNumbers(messages: ReadonlySet<string>, symbol: string, answer: () => ExtensionNumbers): ExtensionNumbers {
  try {
    return answer();
  } catch (err) {
    if (messages.has(symbol)) return { baseTypeName: symbol, extensionNumber: [] };
    throw err;
  }
}

class ReflectionV1 extends ReflectionV1Implementation {
  constructor(root: protoLoader.PackageDefinition, services: string[], private readonly messages: ReadonlySet<string>) {
    super(root, { services });
  }
  override allExtensionNumbersOfType(symbol: string): ExtensionNumbers {
    return extensionNumbers(this.messages, symbol, () => super.allExtensionNumbersOfType(symbol));
  }
}

class ReflectionV1Alpha extends ReflectionV1AlphaImplementation {
  constructor(root: protoLoader.PackageDefinition, services: string[], private readonly messages: ReadonlySet<string>) {
    super(root, { services });
  }
  override allExtensionNumbersOfType(symbol: string): ExtensionNumbers {
    return extensionNumbers(this.messages, symbol, () => super.allExtensionNumbersOfType(symbol));
  }
}

/** Adds reflection (v1 and v1alpha) listing `services`, describing them from the compiled contract. */
export function addReflection(server: Pick<grpc.Server, 'addService'>, services: string[]): void {
  const files = fileDescriptorProtos();
  // The library reads only `fileDescriptorProtos` from a package definition's entries.
  const root = { 'skein.descriptors': { fileDescriptorProtos: files } } as unknown as protoLoader.PackageDefinition;
  const messages = messageTypeNames(files);
  new ReflectionV1(root, services, messages).addToServer(server);
  new ReflectionV1Alpha(root, services, messages).addToServer(server);
}

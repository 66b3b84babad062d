import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type DescriptorProto } from '@bufbuild/protobuf/wkt';
import { FILE_DESCRIPTOR_SETS_BASE64 } from './gen/descriptor-sets.js';

/**
 * Every FileDescriptorProto (serialized) of the contract and of grpc.health.v1, as buf compiled
 * them: what server reflection hands to grpcurl and other reflection clients. A FileDescriptorSet
 * is `repeated FileDescriptorProto file = 1`, so the files are its length-delimited field-1 entries.
 */
export function fileDescriptorProtos(): Buffer[] {
  const files: Buffer[] = [];
  for (const b64 of FILE_DESCRIPTOR_SETS_BASE64) {
    const set = Buffer.from(b64, 'base64');
    let pos = 0;
    const varint = (): number => {
      let result = 0;
      for (let shift = 0; ; shift += 7) {
        const byte = set[pos++]!;
        result += (byte & 0x7f) * 2 ** shift;
        if (byte < 0x80) return result;
      }
    };
    while (pos < set.length) {
      const tag = varint();
      if (tag !== 0x0a) throw new Error(`unexpected field tag ${tag} in a FileDescriptorSet`);
      const length = varint();
      files.push(set.subarray(pos, pos + length));
      pos += length;
    }
  }
  return files;
}

/**
 * The full names of every message type (nested ones included) that `files` declare: what server
 * reflection needs to tell a message without extensions (an empty extension list) from a name it
 * does not know (NOT_FOUND).
 */
export function messageTypeNames(files: readonly Uint8Array[] = fileDescriptorProtos()): Set<string> {
  const names = new Set<string>();
  const visit = (scope: string, messages: readonly DescriptorProto[]) => {
    for (const m of messages) {
      const name = scope ? `${scope}.${m.name}` : m.name;
      names.add(name);
      visit(name, m.nestedType);
    }
  };
  for (const bytes of files) {
    const file = fromBinary(FileDescriptorProtoSchema, bytes);
    visit(file.package, file.messageType);
  }
  return names;
}

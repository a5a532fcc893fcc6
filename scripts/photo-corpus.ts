/**
 * A corpus of real camera photographs taken from Debian 12 (bookworm) packages, for calibrating
 * and benchmarking JPEG/WebP/AVIF quality. The photographs are not kept in the repository: each
 * is copied out of its Debian package (`apt-get download` + `dpkg -x`) into `.cache/photos/` the
 * first time it is asked for; files already there are used as they are (no network).
 *
 * Run: npx tsc -p . && node dist/scripts/photo-corpus.js [--dir=DIR] [--only=a,b]   (prints a table)
 * Library: `await ensurePhotoCorpus({ only: CORPUS_TEST_SUBSET })` fetches just a few.
 * Credits and licences: docs/PHOTOS.md (and the `credit` / `license` fields below).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp, { type Metadata } from 'sharp';

/** A photograph laid out on disk. */
export interface Photo {
  name: string;
  /** absolute path: `<dir>/<name>.<ext>` */
  file: string;
  /** the Debian package it comes from */
  package: string;
  description: string;
  width: number;
  height: number;
  /** sharp's format: 'jpeg' | 'png' */
  format: string;
}

/**
 * One entry of the corpus. `content` was judged by eye, helped by the share of flat 8×8 blocks:
 * 'smooth' = mostly sky, fog, water or out-of-focus background; 'detailed' = fine texture or grain
 * almost everywhere (foliage, gravel, fur, film grain); 'mixed' = both.
 */
export interface PhotoSource {
  /** short unique name; the file is `<name>.<ext>` */
  name: string;
  package: string;
  /** absolute path of the file inside the package (a regular file, not a symlink) */
  path: string;
  description: string;
  content: 'smooth' | 'detailed' | 'mixed';
  /** photographer / source, as the package's copyright file or metadata gives it */
  credit: string;
  /** licence of this file according to the package's copyright file */
  license: string;
  /** size and SHA-256 of the file in the package version listed in PHOTO_PACKAGES */
  bytes: number;
  sha256: string;
}

/** The packages used: version the corpus was checked with, and download size of that .deb. */
export const PHOTO_PACKAGES: Readonly<Record<string, { version: string; debBytes: number; license: string }>> = {
  'mate-backgrounds': { version: '1.26.0-1', debBytes: 46_638_500, license: 'GPL-2+ (nature/*)' },
  'lomiri-wallpapers-16.04': { version: '20.04.0-2', debBytes: 15_783_184, license: 'CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0 per file' },
  'lomiri-wallpapers-20.04': { version: '20.04.0-2', debBytes: 11_377_208, license: 'CC-BY-SA-3.0 (Kleiber)' },
  'plasma-workspace-wallpapers': { version: '4:5.27.5-2', debBytes: 94_047_772, license: 'GPL-2+ (debian/copyright); metadata.json says LGPLv3' },
  'python3-skimage': { version: '0.19.3-8', debBytes: 20_713_608, license: 'BSD-3-Clause (package); images CC0 / public domain per skimage docs' },
  'libjxl-testdata': { version: '0.0~git20230110.d6168ff-1', debBytes: 55_818_872, license: 'BSD-3-clause-Google; external/wesaturate/* CC0' },
  'python-matplotlib-data': { version: '3.6.3-1', debBytes: 2_743_688, license: 'matplotlib licence (PSF-based, Files: *)' },
};

const MATE = '/usr/share/backgrounds/mate/nature';
const LOMIRI = '/usr/share/backgrounds';
const PLASMA = (dir: string, size = '2560x1600.jpg') => `/usr/share/wallpapers/${dir}/contents/images/${size}`;
const SKIMAGE = '/usr/lib/python3/dist-packages/skimage/data';
const JXL = '/usr/share/libjxl-testdata';

export const PHOTOS: readonly PhotoSource[] = [
  // mate-backgrounds: GNOME/MATE "nature" set, 2005-2008 camera JPEGs
  { name: 'water-drop', package: 'mate-backgrounds', path: `${MATE}/Aqua.jpg`, content: 'smooth',
    description: 'Water drop splashing into water, macro; smooth grey-blue out-of-focus background',
    credit: 'Charles Barbin', license: 'GPL-2+', bytes: 200353, sha256: '5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce' },
  { name: 'dune-grass', package: 'mate-backgrounds', path: `${MATE}/Dune.jpg`, content: 'mixed',
    description: 'Dry beach grass on a dune, blurred blue sea and sky behind (Canon EOS 300D)',
    credit: 'Marco Cogoni, Hylke Bons', license: 'GPL-2+', bytes: 1021283, sha256: '8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91' },
  { name: 'storm-sky', package: 'mate-backgrounds', path: `${MATE}/Storm.jpg`, content: 'smooth',
    description: 'Dark storm clouds over flat land, motion-blurred road barrier (Canon EOS 400D)',
    credit: 'Sergey Nazarov', license: 'GPL-2+', bytes: 695070, sha256: '77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957' },
  { name: 'wood-planks', package: 'mate-backgrounds', path: `${MATE}/Wood.jpg`, content: 'mixed',
    description: 'Weathered pale wooden deck planks, shallow depth of field (Minolta DiMAGE Z5)',
    credit: 'Jean-François Fortin Tam', license: 'GPL-2+', bytes: 525520, sha256: '19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07' },
  { name: 'ladybird', package: 'mate-backgrounds', path: `${MATE}/LadyBird.jpg`, content: 'mixed',
    description: 'Ladybird on a grass blade among forget-me-nots, soft background',
    credit: 'Charles Barbin', license: 'GPL-2+', bytes: 351588, sha256: 'e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d' },
  { name: 'meadow-grass', package: 'mate-backgrounds', path: `${MATE}/GreenMeadow.jpg`, content: 'detailed',
    description: 'Dense fresh green grass blades, close-up',
    credit: 'Timothy Schellhase, Lapo Calamandrei', license: 'GPL-2+', bytes: 183377, sha256: '8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832' },
  { name: 'dandelion-seeds', package: 'mate-backgrounds', path: `${MATE}/TwoWings.jpg`, content: 'smooth',
    description: 'Two dandelion seeds on a stalk before orange flower bokeh',
    credit: 'Charles Barbin, Hylke Bons', license: 'GPL-2+', bytes: 881400, sha256: '665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb' },
  { name: 'yellow-flower', package: 'mate-backgrounds', path: `${MATE}/YellowFlower.jpg`, content: 'mixed',
    description: 'Saturated yellow flower petals, macro, dark background',
    credit: 'Charles Barbin', license: 'GPL-2+', bytes: 267440, sha256: '254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306' },

  // lomiri-wallpapers-16.04: Ubuntu community wallpaper contest photos (2018)
  { name: 'bridge-cables', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/Bridge_by_Sander_Klootwijk.jpg`, content: 'smooth',
    description: 'Bridge stay cables crossing a pale blue sky over a flat horizon',
    credit: 'Sander Klootwijk', license: 'CC-BY-SA-4.0', bytes: 914024, sha256: 'bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050' },
  { name: 'dragonfly', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/Dragonfly_by_Bolly.jpg`, content: 'detailed',
    description: 'Dragonfly on a twig before sunlit hazel leaves and deep blue sky',
    credit: '"Bolly"', license: 'CC-BY-SA-4.0', bytes: 1520114, sha256: 'af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3' },
  { name: 'fig-bowl', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/Picture_0B_by_freespace.jpg`, content: 'detailed',
    description: 'Halved fig in a glossy red bowl on grey stone, seeds in sharp focus',
    credit: 'Trevor "Freespace"', license: 'CC-BY-4.0', bytes: 740181, sha256: 'c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad' },
  { name: 'wine-room', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/Wine_by_Jakkub_Mede.jpg`, content: 'mixed',
    description: 'Indoor: djembe on a beanbag, wine and coffee grinder on a pallet table, loudspeaker (portrait)',
    credit: 'Jakub Mede', license: 'CC-BY-4.0', bytes: 522397, sha256: 'd2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74' },
  { name: 'dogs-window', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/friends_by_Aitzol_Berasategi.jpg`, content: 'mixed',
    description: 'Two dogs looking out of a window in a weathered wooden wall (portrait)',
    credit: 'Aitzol Berasategi', license: 'CC-BY-4.0', bytes: 575004, sha256: 'cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d' },
  { name: 'forest-stream', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/life_by_Aitzol_Berasategi.jpg`, content: 'detailed',
    description: 'Stream over mossy rocks in a forest',
    credit: 'Aitzol Berasategi', license: 'CC-BY-4.0', bytes: 1720388, sha256: '4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05' },
  { name: 'mountain-trail', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/picosdeeuropa_by_Aitzol_Berasategi.jpg`, content: 'detailed',
    description: 'Picos de Europa: rocky peaks under clouds, trail across grassland',
    credit: 'Aitzol Berasategi', license: 'CC-BY-4.0', bytes: 1826239, sha256: '414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a' },
  { name: 'dandelion-field', package: 'lomiri-wallpapers-16.04', path: `${LOMIRI}/seeding_by_Clements_Engelhardt.jpg`, content: 'mixed',
    description: 'Backlit dandelion seed heads in a meadow at sunset, bokeh',
    credit: 'Clemens Engelhardt', license: 'CC0-1.0', bytes: 1485159, sha256: 'a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f' },

  // lomiri-wallpapers-20.04
  { name: 'nuthatch-bark', package: 'lomiri-wallpapers-20.04', path: `${LOMIRI}/Kleiber_by_Lukas_Baubkus.jpg`, content: 'mixed',
    description: 'Nuthatch on a tree trunk, deep bark texture, blurred snowy background',
    credit: 'Lukas Baubkus', license: 'CC-BY-SA-3.0', bytes: 4379037, sha256: '6572410c09f4492c74ccadde133565a14c0161617d5917d4c820c66d65a44ba7' },

  // plasma-workspace-wallpapers: KDE Plasma photo wallpapers (2015)
  { name: 'fog-pier', package: 'plasma-workspace-wallpapers', path: PLASMA('ColdRipple'), content: 'smooth',
    description: 'Wooden pier running into fog over a lake, nearly monochrome (Olympus E-M1)',
    credit: 'Risto Saukonpää', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 526600, sha256: '05bef6722fc0ed81292cceb3ed026c38d17e510f3c84be7d68610c2b1a723c3f' },
  { name: 'dusk-lake', package: 'plasma-workspace-wallpapers', path: PLASMA('DarkestHour'), content: 'smooth',
    description: 'Misty lake at dusk, deep blue, almost featureless (Olympus E-M1)',
    credit: 'Risto Saukonpää', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 318080, sha256: '8e3703fae3a3c217b1fc2b399b706cd3720584268d071ba153e4809daa55f1ce' },
  { name: 'boats-sunset', package: 'plasma-workspace-wallpapers', path: PLASMA('EveningGlow'), content: 'detailed',
    description: 'Rowing boats on a lakeshore under a glowing sunset sky',
    credit: 'Ian Hex', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 632699, sha256: '586682dcb362b9f620068f10138f87d0d3649939aef238adc5807cb951976a7a' },
  { name: 'fallen-leaf', package: 'plasma-workspace-wallpapers', path: PLASMA('FallenLeaf'), content: 'mixed',
    description: 'Autumn maple leaf on the forest floor, warm bokeh (Canon EOS 70D)',
    credit: 'Martin Klapetek', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 543137, sha256: '95603a6560c7e8d50e0e03b3f4adbe39c5258c72528e74e4ecaea1daf4e499de' },
  { name: 'moss', package: 'plasma-workspace-wallpapers', path: PLASMA('OneStandsOut'), content: 'detailed',
    description: 'Star moss close-up with one orange tuft, dark soil (Olympus E-M1)',
    credit: 'Risto Saukonpää', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 892075, sha256: 'cb507baf1dafdcae362264f3aba9483ed4be5f6c9fdd770f0ec0920c6d9e80fd' },
  { name: 'forest-path', package: 'plasma-workspace-wallpapers', path: PLASMA('Path'), content: 'detailed',
    description: 'Path through a dense conifer forest, ferns (Olympus E-M1)',
    credit: 'Risto Saukonpää', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 910087, sha256: '7477457d7f17b736259f1b021864778ad4ba802cf3214e6728181ff29126bba8' },
  { name: 'colorful-cups', package: 'plasma-workspace-wallpapers', path: PLASMA('ColorfulCups'), content: 'mixed',
    description: 'Stacked colourful cups seen from above, saturated hues, Aarhus (Sony NEX-3N)',
    credit: 'Dmitri Popov', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 698472, sha256: '6e0f3a72feb5a4a9fec191b77e34874c3c69e2d93040deb3f07773e73385023d' },
  { name: 'summer-night-lake', package: 'plasma-workspace-wallpapers', path: PLASMA('summer_1am'), content: 'smooth',
    description: 'Calm lake under a pastel summer-night sky at 1 am, long gradients',
    credit: 'Risto Saukonpää', license: 'GPL-2+ (metadata: LGPLv3)', bytes: 442791, sha256: 'c868b50789591dd42910153c768053f1ba0a98cb36bbfc2b7a96a1045d0477f8' },

  // python3-skimage: scikit-image sample data (lossless PNG except the rocket)
  { name: 'astronaut', package: 'python3-skimage', path: `${SKIMAGE}/astronaut.png`, content: 'mixed',
    description: 'Portrait of astronaut Eileen Collins in an orange suit, flag and shuttle model (NASA); PNG',
    credit: 'NASA', license: 'public domain', bytes: 791555, sha256: '88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5' },
  { name: 'coffee', package: 'python3-skimage', path: `${SKIMAGE}/coffee.png`, content: 'mixed',
    description: 'Cup of coffee on a red saucer, wooden table; PNG',
    credit: 'Rachel Michetti', license: 'CC0', bytes: 466706, sha256: 'cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7' },
  { name: 'cat', package: 'python3-skimage', path: `${SKIMAGE}/chelsea.png`, content: 'detailed',
    description: 'Face of Chelsea the cat, fur and whiskers; PNG, 451×300',
    credit: 'Stefan van der Walt', license: 'CC0', bytes: 240512, sha256: '596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb' },
  { name: 'motorcycle', package: 'python3-skimage', path: `${SKIMAGE}/motorcycle_left.png`, content: 'detailed',
    description: 'Red motorcycle in a cluttered workshop (Middlebury stereo, left view); PNG',
    credit: 'Middlebury stereo dataset (Nesic, Westling, Wang, Kitajima, ...)', license: 'BSD-3-Clause (package)', bytes: 644701, sha256: 'db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179' },
  { name: 'cameraman', package: 'python3-skimage', path: `${SKIMAGE}/camera.png`, content: 'mixed',
    description: 'Man with a camera on a tripod on a lawn, city behind; greyscale PNG',
    credit: 'Lav Varshney', license: 'CC0', bytes: 139512, sha256: 'b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a' },
  { name: 'grass', package: 'python3-skimage', path: `${SKIMAGE}/grass.png`, content: 'detailed',
    description: 'Grass seen from above, very fine texture; greyscale PNG',
    credit: '"linolafett" (DeviantArt)', license: 'CC0', bytes: 217893, sha256: 'b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89' },
  { name: 'gravel', package: 'python3-skimage', path: `${SKIMAGE}/gravel.png`, content: 'detailed',
    description: 'Gravel texture (CC0Textures Gravel04 scan); greyscale PNG',
    credit: 'CC0Textures', license: 'CC0', bytes: 194247, sha256: 'c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12' },
  { name: 'rocket', package: 'python3-skimage', path: `${SKIMAGE}/rocket.jpg`, content: 'mixed',
    description: 'Falcon 9 on the launch pad at night, dark blue sky, pad lights; Adobe RGB JPEG',
    credit: 'SpaceX', license: 'public domain', bytes: 112525, sha256: 'c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c' },

  // libjxl-testdata: JPEG XL test images (lossless)
  { name: 'flowers', package: 'libjxl-testdata', path: `${JXL}/jxl/flower/flower.png`, content: 'detailed',
    description: 'Pink and violet daisies in a pot, 2268×1512; PNG',
    credit: 'JPEG XL project test data', license: 'BSD-3-clause-Google', bytes: 4330524, sha256: '06fe0af7a5c790d2932a40e2d76b0d91aa6e73f3e55cc3f97ea6afae0133c2e7' },
  { name: 'room-hdr', package: 'libjxl-testdata', path: `${JXL}/jxl/hdr_room.png`, content: 'mixed',
    description: 'Sunlit room with lace curtains, chairs and a portrait; HDR: 16-bit PNG with a Rec.2020 HLG ICC profile',
    credit: 'JPEG XL project test data', license: 'BSD-3-clause-Google', bytes: 1536564, sha256: 'df2efb86c6114dba264c849ac0ae3a073c663d5aa55890fa276b8bd3b0efb2ae' },
  { name: 'rocky-coast', package: 'libjxl-testdata', path: `${JXL}/external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png`, content: 'mixed',
    description: 'Rocky shore over calm water with hills and sky, 500×500; PNG',
    credit: 'keong macan (wesaturate)', license: 'CC0', bytes: 368318, sha256: 'f4e2d8da468a4f6bfd3a651a7f0a24c2b883e7f398b326c0e77a9dab42fb5322' },
  { name: 'tulips', package: 'libjxl-testdata', path: `${JXL}/external/wesaturate/500px/tmshre_riaphotographs_srgb8.png`, content: 'smooth',
    description: 'Pink tulips in soft focus, 500×500; PNG',
    credit: 'riaphotographs (wesaturate)', license: 'CC0', bytes: 314330, sha256: 'b490de2143a336aff26a7ce4ee010f18dece53c3b0802cda76c1796daa5f32a0' },
  { name: 'blossom', package: 'libjxl-testdata', path: `${JXL}/external/wesaturate/500px/u76c0g_bliznaca_srgb8.png`, content: 'mixed',
    description: 'Blossoming branch against a blurred blue-grey background, 500×500; PNG',
    credit: 'bliznaca (wesaturate)', license: 'CC0', bytes: 367925, sha256: '9631423e430c1682fca3c2212adc6ae046df8839d22dfaa8b662761f34b6f711' },

  // python-matplotlib-data
  { name: 'grace-hopper', package: 'python-matplotlib-data', path: '/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg', content: 'detailed',
    description: 'Portrait of Grace Hopper in uniform, flag behind; grainy scan, 512×600',
    credit: 'matplotlib sample data (US Navy portrait)', license: 'matplotlib licence (Files: *)', bytes: 61306, sha256: 'a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130' },
];

/**
 * Four varied, small photos from the two smallest packages (python-matplotlib-data 2.7 MB,
 * python3-skimage 21 MB) for tests: smooth night sky (JPEG), gravel (detailed, greyscale PNG),
 * coffee (colour PNG), Grace Hopper (grainy JPEG).
 */
export const CORPUS_TEST_SUBSET: string[] = ['rocket', 'gravel', 'coffee', 'grace-hopper'];

/** The repository root, from this module's place: dist/scripts/ (compiled) or scripts/ (ts-node, tsx). */
export function repoRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.dirname(here);
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
}

export const DEFAULT_PHOTO_DIR = path.join(repoRoot(), '.cache', 'photos');

const extOf = (p: PhotoSource) => path.extname(p.path).slice(1).toLowerCase();

/** Where `ensurePhotoCorpus` puts a photo. */
export const photoFile = (p: PhotoSource, dir = DEFAULT_PHOTO_DIR) => path.join(dir, `${p.name}.${extOf(p)}`);

interface RunResult { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', (err: NodeJS.ErrnoException) => {
      const missing = err.code === 'ENOENT' || err.code === 'EACCES';
      reject(Object.assign(
        new Error(missing
          ? `${cmd} not found: the photo corpus is taken from Debian packages and needs apt-get and dpkg (Debian/Ubuntu)`
          : `could not run ${cmd}: ${err.message}`),
        { code: missing ? 'ENOENT' : err.code },
      ));
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * apt-get as root: directly when root, through sudo otherwise (where there is no sudo, directly:
 * `apt-get download` works unprivileged, only `apt-get update` does not).
 */
async function aptGet(args: string[], cwd: string): Promise<RunResult> {
  // The temp dir is private, so apt's _apt sandbox user could not write the .deb there: apt
  // would fall back to root with a warning. Ask for that up front.
  const full = ['-o', 'APT::Sandbox::User=root', ...args];
  if (isRoot()) return run('apt-get', full, cwd);
  try {
    return await run('sudo', ['apt-get', ...full], cwd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return run('apt-get', full, cwd);
  }
}

const tail = (s: string, lines = 6) => s.trim().split('\n').slice(-lines).join('\n').trim();

/** Errors that mean the package lists are missing or stale (apt-get update fixes them). */
const STALE_LISTS = /Unable to locate package|has no installation candidate|Couldn't find any package|No packages found|Can't select|Failed to fetch|404\s+Not Found|Hash Sum mismatch|File has unexpected size/i;

let aptUpdated = false;

async function aptDownload(pkg: string, cwd: string, log: (m: string) => void): Promise<string> {
  const attempt = () => aptGet(['download', pkg], cwd);
  let res = await attempt();
  if (res.code !== 0 && !aptUpdated && STALE_LISTS.test(res.stderr + res.stdout)) {
    log(`apt-get download ${pkg} failed (${tail(res.stderr, 1)}); running apt-get update once and retrying`);
    aptUpdated = true;
    const upd = await aptGet(['update'], cwd);
    if (upd.code !== 0) throw new Error(`apt-get update failed (exit ${upd.code}): ${tail(upd.stderr || upd.stdout)}`);
    res = await attempt();
  }
  if (res.code !== 0) {
    const why = tail(res.stderr || res.stdout) || `exit ${res.code}`;
    const hint = aptUpdated
      ? `apt-get update was run; is ${pkg} in the apt sources (Debian 12 bookworm main)?`
      : `run apt-get update?${isRoot() ? '' : ' is sudo allowed?'}`;
    throw new Error(`apt-get download ${pkg} failed: ${why} (${hint})`);
  }
  const debs = (await readdir(cwd)).filter((f) => f.endsWith('.deb') && f.startsWith(`${pkg}_`));
  const deb = debs[0];
  if (!deb) throw new Error(`apt-get download ${pkg} succeeded but left no ${pkg}_*.deb in ${cwd}`);
  return path.join(cwd, deb);
}

/** version part of a .deb file name (`name_version_arch.deb`, ':' escaped as %3a) */
const debVersion = (deb: string) => decodeURIComponent(path.basename(deb).split('_')[1] ?? '?');

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).size > 0;
  } catch {
    return false;
  }
}

async function fetchPackage(pkg: string, wanted: PhotoSource[], dir: string, log: (m: string) => void): Promise<void> {
  const info = PHOTO_PACKAGES[pkg];
  const mb = info ? ` (~${(info.debBytes / 1e6).toFixed(1)} MB)` : '';
  log(`${pkg}: downloading${mb} for ${wanted.map((p) => p.name).join(', ')}`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'imgedge-photos-'));
  try {
    const deb = await aptDownload(pkg, tmp, log);
    const version = debVersion(deb);
    if (info && version !== info.version) {
      log(`${pkg}: got version ${version}, the corpus was checked with ${info.version}; checking files`);
    }
    const root = path.join(tmp, 'root');
    await mkdir(root);
    const x = await run('dpkg', ['-x', deb, root], tmp);
    if (x.code !== 0) throw new Error(`dpkg -x ${path.basename(deb)} failed: ${tail(x.stderr || x.stdout) || `exit ${x.code}`}`);
    for (const p of wanted) {
      const src = path.join(root, p.path);
      if (!(await exists(src))) {
        throw new Error(`${pkg} ${version} has no file ${p.path} (for photo "${p.name}"); the corpus table needs updating`);
      }
      const body = await readFile(src);
      const sha = createHash('sha256').update(body).digest('hex');
      if (p.sha256 && sha !== p.sha256) {
        log(`warning: ${p.name}: ${p.path} in ${pkg} ${version} differs from the one checked (sha256 ${sha.slice(0, 12)}… ≠ ${p.sha256.slice(0, 12)}…)`);
      }
      const dest = photoFile(p, dir);
      const part = `${dest}.${process.pid}.part`;
      await copyFile(src, part);
      await rename(part, dest);
      log(`  ${path.basename(dest)}  ${body.length} bytes`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Makes sure the listed photos (all, or the names in `only`) are in `dir` (default
 * `<repo>/.cache/photos`) as `<name>.<ext>`, fetching the packages of missing ones with apt-get,
 * and returns them with their dimensions and format. Files already present cause no download.
 */
export async function ensurePhotoCorpus(
  opts: { dir?: string; only?: string[]; log?: (msg: string) => void } = {},
): Promise<Photo[]> {
  const dir = path.resolve(opts.dir ?? DEFAULT_PHOTO_DIR);
  const log = opts.log ?? (() => {});
  let selected: PhotoSource[] = [...PHOTOS];
  if (opts.only) {
    const known = new Set(PHOTOS.map((p) => p.name));
    const unknown = opts.only.filter((n) => !known.has(n));
    if (unknown.length) {
      throw new Error(`unknown photo name(s): ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
    }
    const want = new Set(opts.only);
    selected = PHOTOS.filter((p) => want.has(p.name));
  }
  await mkdir(dir, { recursive: true });

  const missing = new Map<string, PhotoSource[]>();
  for (const p of selected) {
    if (await exists(photoFile(p, dir))) continue;
    const list = missing.get(p.package) ?? [];
    list.push(p);
    missing.set(p.package, list);
  }
  if (missing.size) {
    const n = [...missing.values()].reduce((s, l) => s + l.length, 0);
    log(`photo corpus: ${n} of ${selected.length} photo(s) missing in ${dir}; fetching ${missing.size} package(s)`);
  }
  for (const [pkg, wanted] of missing) await fetchPackage(pkg, wanted, dir, log);

  const photos: Photo[] = [];
  for (const p of selected) {
    const file = photoFile(p, dir);
    let meta: Metadata;
    try {
      meta = await sharp(file).metadata();
    } catch (err) {
      throw new Error(`${file}: not a readable image (${(err as Error).message}); delete it to fetch it again`);
    }
    const swap = (meta.orientation ?? 1) >= 5;
    photos.push({
      name: p.name, file, package: p.package, description: p.description,
      width: (swap ? meta.height : meta.width) ?? 0,
      height: (swap ? meta.width : meta.height) ?? 0,
      format: meta.format ?? extOf(p),
    });
  }
  return photos;
}

/** CLI: `node dist/scripts/photo-corpus.js [--dir=DIR] [--only=name,name]` */
async function main(argv: string[]): Promise<void> {
  const t0 = Date.now();
  const opts: { dir?: string; only?: string[]; log: (m: string) => void } = { log: (m) => process.stderr.write(`${m}\n`) };
  for (const arg of argv) {
    const [key, value] = arg.split(/=(.*)/s);
    if (key === '--dir' && value) opts.dir = value;
    else if (key === '--only' && value) opts.only = value.split(',').filter(Boolean);
    else throw new Error(`unknown argument ${arg}; usage: photo-corpus.js [--dir=DIR] [--only=name,name]`);
  }
  const photos = await ensurePhotoCorpus(opts);
  const src = new Map(PHOTOS.map((p) => [p.name, p]));
  const rows = await Promise.all(photos.map(async (p) => ({
    p, bytes: (await stat(p.file)).size, content: src.get(p.name)?.content ?? '',
  })));
  const w = { name: 4, pkg: 7 };
  for (const r of rows) {
    w.name = Math.max(w.name, r.p.name.length);
    w.pkg = Math.max(w.pkg, r.p.package.length);
  }
  const line = (c: string[]) => `${c[0]!.padEnd(w.name)}  ${c[1]!.padEnd(w.pkg)}  ${c[2]!.padStart(9)}  ${c[3]!.padEnd(6)}  ${c[4]!.padStart(9)}  ${c[5]!}`;
  const out = [line(['name', 'package', 'size', 'format', 'bytes', 'content'])];
  for (const { p, bytes, content } of rows) {
    out.push(line([p.name, p.package, `${p.width}x${p.height}`, p.format, String(bytes), content]));
  }
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  const jpeg = photos.filter((p) => p.format === 'jpeg').length;
  out.push('', `${photos.length} photos (${jpeg} JPEG, ${photos.length - jpeg} lossless), ${(total / 1e6).toFixed(1)} MB in ${path.dirname(rows[0]?.p.file ?? DEFAULT_PHOTO_DIR)}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.stdout.write(`${out.join('\n')}\n`);
}

const invoked = process.argv[1] ? await realpath(process.argv[1]).catch(() => process.argv[1]!) : '';
if (invoked && import.meta.url === pathToFileURL(invoked).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`photo-corpus: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
